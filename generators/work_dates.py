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

TEMPLATE_ID = "work_date@v1"
QUESTION = "When was the work {title} by {author} written? Answer just with the year."


def work_date_requests(works: Sequence[tuple[str, str, str]], sampling: SamplingParams | None = None
                       ) -> list[GenerationRequest]:
    """One greedy, short request per (work id, title, author); works without a title or author are skipped."""
    sampling = sampling or SamplingParams(temperature=0.0, max_tokens=8)
    out = []
    for wid, title, author in works:
        if not title or not author:
            continue
        q = QUESTION.format(title=" ".join(title.split()), author=" ".join(author.split()))
        out.append(GenerationRequest(id="date-" + short_hash(wid, length=20),
                                     messages=[{"role": "user", "content": q}], sampling=sampling,
                                     template_id=TEMPLATE_ID, parent_ids=[wid], meta={"work_id": wid}))
    return out


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
