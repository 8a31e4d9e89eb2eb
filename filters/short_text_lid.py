"""Language ID for short translated fields (pure, given the models): lingua beside fastText lid.176.

lid.176 is trained on web pages; on one instruction sentence of a low-resource language its top label is often a
neighbour (`sw` -> `id`/`vo`, `af` -> `nl`, `hr` -> `sr`/`sh`) or the right label at a low probability. lingua
(`lingua-language-detector`, the `lid` extra: offline n-gram models of 75 languages) is built for short text. The
detector is built over all of lingua's languages (so a neighbour such as Azerbaijani for Turkish can win), lazily,
once per process. `english_segments` finds the clauses of a translation that lid.176 calls English: a
half-translated field ("Wasser verdunstet aus Ozeanen, rises as vapour, cools into clouds") whose whole-text
label is still the target.
"""
from __future__ import annotations

import re
from functools import lru_cache

from filters.langid import predict_languages

ALIASES = {"no": "nb"}  # our code -> lingua's ISO 639-1 code (lingua has Bokmål / Nynorsk, no plain "no")
INSTALL_HINT = "pip install lingua-language-detector (the project's `lid` extra)"


class LinguaMissing(RuntimeError):
    pass


@lru_cache(maxsize=1)
def _detector():
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        raise LinguaMissing(f"checks.lid_checker needs lingua, which is not installed: {INSTALL_HINT}") from None
    return LanguageDetectorBuilder.from_all_languages().build()


def require_lingua() -> None:
    """Raise `LinguaMissing` (one line) when lingua is not importable; build nothing."""
    import importlib.util

    if importlib.util.find_spec("lingua") is None:
        raise LinguaMissing(f"checks.lid_checker needs lingua, which is not installed: {INSTALL_HINT}")


def lingua_supports(code: str) -> bool:
    try:
        from lingua import IsoCode639_1
    except ImportError:
        return False
    return hasattr(IsoCode639_1, ALIASES.get(code, code).upper())


def lingua_probabilities(text: str) -> dict[str, float]:
    """lingua's confidence per language (ISO 639-1, our aliases mapped back), highest first; {} for no letters."""
    back = {v: k for k, v in ALIASES.items()}
    out = {}
    for cv in _detector().compute_language_confidence_values(text):
        code = cv.language.iso_code_639_1.name.lower()
        out[back.get(code, code)] = float(cv.value)
    return out


_SEGMENT = re.compile(r"[^,.;:!?()\n\"“”«»]+")


def english_segments(text: str, model, min_words: int = 3, threshold: float = 0.8) -> list[tuple[str, float]]:
    """Clauses of at least `min_words` words that lid.176 labels English with p >= threshold."""
    out = []
    for m in _SEGMENT.finditer(text or ""):
        seg = m.group(0).strip()
        if len(seg.split()) < min_words or not any(c.isalpha() for c in seg):
            continue
        p = predict_languages(model, seg, 1)
        if p.get("en", 0.0) >= threshold:
            out.append((seg, p["en"]))
    return out
