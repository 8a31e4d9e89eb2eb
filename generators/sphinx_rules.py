"""sPhinX: which English samples are translated, and how (pure; the rules are ours, the paper's are not public).

Every source pair gets one rule, recorded on its row:
- `english_only`: mostly code or math (`code_math_share` >= threshold): never translated, stays in English.
- language-bound tasks, detected from the English instruction (first match in `TASKS` order), each with an action
  from config: `skip` (not translated: the task only makes sense in English: rhymes, anagrams, letter / word
  counting) or `wrapper_only` (the instruction is translated, the payload it works on (the input, quoted text)
  and the response stay byte-identical: translate-this, spelling / grammar correction) or `labels` (multiple
  choice: everything translated, the option labels `A)`, `(b)`, `3.` protected, a label-only answer kept).
- `translate`: everything else, instruction and response translated with their protected spans.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from corpora.config import StrictModel
from filters.protected_spans import Span, code_math_share

Action = Literal["skip", "wrapper_only", "labels", "translate"]

TASKS: list[tuple[str, re.Pattern]] = [
    ("anagram", re.compile(r"\banagrams?\b|\bpalindrom\w*|\bunscrambl\w*|\bscrambled\b|\bspell\w* (?:it |\w+ )?backwards?\b",
                           re.I)),
    ("rhyme", re.compile(r"\brhym\w*|\bhaiku\b|\blimerick\b|\balliterat\w*|\btongue[- ]twister|\bacrostic\b|\bpuns?\b",
                         re.I)),
    ("counting", re.compile(r"\bhow many (?:letters|characters|words|syllables|vowels|consonants|times)\b"
                            r"|\bcount (?:the )?(?:number of )?(?:letters|characters|words|syllables|vowels)\b"
                            r"|\b(?:number of|word|letter|character|syllable) count\b"
                            r"|\b(?:starts?|begins?|ends?) with (?:the )?letter\b"
                            r"|\bletters? [\"'“‘][A-Za-z][\"'”’]|\bthe letter [A-Za-z]\b",
                            re.I)),
    ("translate_this", re.compile(r"\btranslat\w*\b", re.I)),
    ("grammar", re.compile(r"\b(?:grammar|grammatical\w*|spelling|misspell\w*|typos?|proofread\w*|punctuation)\b", re.I)),
    ("multiple_choice", re.compile(r"\bmultiple[- ]choice\b|\bchoose (?:the )?(?:correct|right|best) (?:answer|option)\b"
                                   r"|\boptions?:", re.I)),
]
TASK_NAMES = tuple(n for n, _ in TASKS)
_OPTION = re.compile(r"^[ \t]*(\(?[A-Ha-h1-8][\).:])[ \t]+\S", re.M)
_LABEL_ANSWER = re.compile(r"^\s*\(?([A-Ha-h1-8])[\).:]?\s*$")
_QUOTED = re.compile(r"\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»|'[^'\n]{2,}'(?!\w)")


class RulesConfig(StrictModel):
    code_math_threshold: float = Field(0.5, gt=0, le=1, description="english_only at or above this code/math share")
    response_weight: float = Field(0.6, ge=0, le=1, description="the code share of the response alone counts this much")
    actions: dict[str, Action] = Field(default_factory=lambda: {
        "anagram": "skip", "rhyme": "skip", "counting": "skip", "translate_this": "wrapper_only",
        "grammar": "wrapper_only", "multiple_choice": "labels"},
        description="language-bound task -> skip / wrapper_only / labels / translate")


@dataclass(frozen=True)
class Rule:
    name: str  # english_only / skip / wrapper_only / labels / translate
    task: str | None  # the language-bound task that decided it (None: none)
    code_math_share: float

    @property
    def label(self) -> str:  # what the row's `rule` column says, e.g. "wrapper_only:translate_this"
        return f"{self.name}:{self.task}" if self.task else self.name

    @property
    def translated(self) -> bool:
        return self.name not in ("english_only", "skip")


def language_bound_task(instruction: str, inp: str) -> str | None:
    for name, pat in TASKS:
        if pat.search(instruction):
            return name
    if len(_OPTION.findall(inp or "")) >= 2:  # an input that lists options: multiple choice
        return "multiple_choice"
    return None


def classify(instruction: str, inp: str, response: str, cfg: RulesConfig) -> Rule:
    # the whole sample, or the code in its response: "write a function" + a code-only answer is a code sample
    # (formulas count in the whole sample only: a bare "3" answering "how many words" is no math sample)
    share = max(code_math_share("\n".join(p for p in (instruction, inp, response) if p)),
                code_math_share(response, formulas=False) * cfg.response_weight)
    if share >= cfg.code_math_threshold:
        return Rule("english_only", None, share)
    task = language_bound_task(instruction, inp)
    if task is None:
        return Rule("translate", None, share)
    action = cfg.actions.get(task, "translate")
    return Rule(action, task if action != "translate" else None, share)


def payload_spans(instruction: str) -> list[Span]:
    """For `wrapper_only` without an input: the quoted text the task works on stays as it is."""
    return [Span(m.start(), m.end(), "payload", m.group(0)) for m in _QUOTED.finditer(instruction)]


def label_spans(text: str) -> list[Span]:
    """Option labels at the start of lines (`A)`, `(b)`, `3.`), or a whole label-only answer."""
    m = _LABEL_ANSWER.match(text)
    if m:
        return [Span(0, len(text), "label", text)]
    return [Span(m.start(1), m.end(1), "label", m.group(1)) for m in _OPTION.finditer(text)]
