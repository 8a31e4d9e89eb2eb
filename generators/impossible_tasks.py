"""Impossible Distillation's prompt templates (one `TEMPLATE_VERSION`, in every request id and template id) and its
rounds of raw-prompt continuations as tasks (`round_task`: contexts, candidates, distill; the judge's task is
`generators.judge.Judge`'s, over `JUDGE`)."""
from __future__ import annotations

from typing import Any, Callable

from corpora.hashing import short_hash
from generators.backends.base import SamplingParams
from generators.task import Task, Template

TEMPLATE_VERSION = 1
# the student's prompt per mode: paraphrase is the reference's stage > 0 input (pipeline/con.py:105-109: the
# context, then the sentence to paraphrase); summary is ours (the reference's summary prompt is not in its code)
STUDENT_PROMPTS = {"paraphrase": "Given context, paraphrase the last sentence.\nContext: {x_l} \nSentence: {x}",
                   "summary": "Given context, shorten the last sentence.\nContext: {x_l} \nSentence: {x}"}
JUDGE = Template("impossible/judge", TEMPLATE_VERSION, "Sentence A: {a}\nSentence B: {b}\nIf sentence A is true, "
                 "must sentence B be true? Answer yes or no.\nAnswer:")
JUDGE_PROMPT = JUDGE.text


def _seeded(sp: SamplingParams, *key: str) -> SamplingParams:
    return SamplingParams(**{**sp.model_dump(), "seed": int(short_hash(*key, length=8), 16) & 0x7FFFFFFF})


def round_task(name: str, kind: str, sampling: SamplingParams, ask: Callable[[dict], tuple[str, str, dict]],
               parse: Callable[[str], Any] | None = None, accept: Callable | None = None) -> Task:
    """A round of raw-prompt continuations: `ask(record) -> (key, prompt, meta)`; the request's id hashes the key,
    the prompt and the template version and seeds its sampling; its parent is the record."""
    def request(task: Task, rec: dict):
        key, prompt, meta = ask(rec)
        rid = f"id{kind[0]}-" + short_hash(key, prompt, str(TEMPLATE_VERSION), length=20)
        return task.ask(rid, prompt=prompt, sampling=_seeded(task.sampling, rid), parent_ids=[rec["id"]], meta=meta)
    return Task(name, Template(f"impossible/{kind}", TEMPLATE_VERSION), sampling, request=request, parse=parse,
                accept=accept)
