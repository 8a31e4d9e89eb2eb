"""The diachronic paper's LLM dating question as an optional evidence source (off by default).

Prompt (the paper's): "When was the work {title} by {author} written? Answer just with the year." The answer's
first plausible year becomes `llm` point evidence with the trust the paper measured for a 70B model (53-68%
exact against first editions): it is one voice among the others, never the date by decree.
"""
from __future__ import annotations

import re
from typing import Sequence

from corpora.hashing import short_hash
from filters.dating.evidence import Evidence
from filters.dating.settings import LLM_CONFIDENCE as DEFAULT_CONFIDENCE
from generators.backends.base import GenerationRequest, SamplingParams
from generators.task import Task, Template

TEMPLATE = Template("work_date", 1, "When was the work {title} by {author} written? Answer just with the year.")
TEMPLATE_ID, QUESTION = TEMPLATE.id, TEMPLATE.text


def _ask(task: Task, work: tuple[str, str, str]) -> GenerationRequest | None:
    wid, title, author = work
    if not title or not author:
        return None
    return task.ask("date-" + short_hash(wid, length=20), parent_ids=[wid], meta={"work_id": wid},
                    user=task.template.format(title=" ".join(title.split()), author=" ".join(author.split())))


def work_date_task(sampling: SamplingParams | None = None) -> Task:
    """Round `work_dates`: one greedy, short request per (work id, title, author) (works without a title or
    author are skipped); an answer parses to its first plausible year, one without a year is rejected `no_year`."""
    return Task("work_dates", TEMPLATE, sampling or SamplingParams(temperature=0.0, max_tokens=8), request=_ask,
                parse=parse_year_answer, unparsed="no_year")


def work_date_requests(works: Sequence[tuple[str, str, str]], sampling: SamplingParams | None = None
                       ) -> list[GenerationRequest]:
    return work_date_task(sampling).requests(works)


def parse_year_answer(answer: str | None, low: int = 1000, high: int = 2100) -> int | None:
    """The first year in an answer ("1905", "It was written in 1868.", "1905-1906" -> 1905); None if there is
    none in [low, high]."""
    if not answer:
        return None
    for m in re.finditer(r"(?<!\d)(\d{4})(?!\d)", answer):
        y = int(m.group(1))
        if low <= y <= high:
            return y
    return None


def llm_evidence(answers: dict[str, str | None], model: str, confidence: float = DEFAULT_CONFIDENCE
                 ) -> dict[str, list[Evidence]]:
    """{work id: [Evidence]} from {work id: answer text}; unparseable answers give no evidence."""
    out: dict[str, list[Evidence]] = {}
    for wid, ans in answers.items():
        y = parse_year_answer(ans)
        if y is not None:
            out[wid] = [Evidence("llm", "point", year=y, confidence=confidence, source=f"llm {model}",
                                 snippet=(ans or "")[:60])]
    return out
