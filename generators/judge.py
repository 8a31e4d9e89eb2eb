"""An LLM judge: one question per item (yes/no, or a score) asked through a round, each answer returned parsed AND
as its raw text.

    judge = Judge(rounds, Template("mine/entails", 1, "A: {a}\\nB: {b}\\nDoes A entail B? Answer yes or no.\\n"),
                  parse=yes_no)                          # or parse=score(1, 5)
    verdicts = judge.ask([{"a": a, "b": b}, ...])        # one Verdict(answer, raw, model) per item, in order

The items are the template's fields; each becomes one request (a raw prompt, or a user message with
`chat=True`) of the judge's task (`generators.task.Task`) whose `meta` is the item. Each `ask` that has something
new to ask is round `<round>#<k>` (k = 1, 2, ...; `generation.rounds.<round>` picks its engine and settings), or
round `<round>` itself with `numbered=False`. Answers are memoised per item: asking the same item again asks
nothing. A failed request gives `Verdict(None, None, None)`; an answer the parser cannot read gives
`Verdict(None, raw, model)`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from corpora.hashing import short_hash
from generators.backends.base import SamplingParams
from generators.task import Task, Template, run_task


def yes_no(text: str) -> bool | None:
    """True for an answer starting with "yes", False for one starting with "no" (case and spaces ignored),
    None otherwise."""
    t = text.strip().lower()
    return True if t.startswith("yes") else False if t.startswith("no") else None


def score(low: float, high: float) -> Callable[[str], float | None]:
    """A parser of the first number in [low, high] in an answer ("4", "Score: 4/5" -> 4.0); None if none."""
    def parse(text: str) -> float | None:
        for m in re.finditer(r"(?<![\d.])-?\d+(?:\.\d+)?", text):
            v = float(m.group(0))
            if low <= v <= high:
                return v
        return None
    return parse


@dataclass(frozen=True)
class Verdict:
    answer: Any  # the parsed answer; None: unparseable or failed
    raw: str | None  # the completion text; None: the request failed
    model: str | None


def _key(item: dict[str, str]) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


class Judge:
    """Asks `template` about items through `rounds` (a `generators.rounds.Rounds`); see the module docstring.
    `request_id(item)` names an item's request (default: `<round>-` + a hash of the template id and the item)."""

    def __init__(self, rounds, template: Template, parse: Callable[[str], Any] = yes_no,
                 sampling: SamplingParams | None = None, round: str = "judge",
                 request_id: Callable[[dict[str, str]], str] | None = None, chat: bool = False,
                 numbered: bool = True):
        self.rounds, self.round, self.numbered = rounds, round, numbered
        self.calls, self.model = 0, None
        self.request_id = request_id or (lambda item: f"{round}-" + short_hash(template.id, _key(item), length=20))
        sampling = sampling or SamplingParams(temperature=0.0, max_tokens=3)
        if sampling.n != 1:
            raise ValueError(f"judge {round!r}: one answer per item (sampling.n = 1), got n={sampling.n}")
        self._memo: dict[str, Verdict] = {}

        def request(task: Task, item: dict[str, str]):
            text = template.format(**item)
            return task.ask(self.request_id(item), **({"user": text} if chat else {"prompt": text}), meta=item)

        self.task = Task(round, template, sampling, request=request, parse=parse)

    def ask(self, items: Sequence[dict[str, str]]) -> list[Verdict]:
        keys = [_key(it) for it in items]
        todo = list({k: it for k, it in zip(keys, items) if k not in self._memo}.values())
        if todo:
            self.calls += 1
            name = f"{self.round}#{self.calls}" if self.numbered else self.round
            out = run_task(self.rounds, self.task, todo, name=name)
            by_request = {self.request_id(it): k for it, k in zip(todo, map(_key, todo))}
            for rec in out.accepted + out.rejected:
                self.model = rec["model"]
                self._memo[by_request[rec["request_id"]]] = Verdict(out.parsed[rec["id"]], rec["text"], rec["model"])
            for rec in out.failed:
                self._memo[by_request[rec["request_id"]]] = Verdict(None, None, None)
        return [self._memo[k] for k in keys]
