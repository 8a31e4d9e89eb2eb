"""Toxicity: share of words on a block list (ours, shipped in filters/data/, or the user's own), plus an optional
fastText classifier (e.g. a Jigsaw-trained model) given by local path."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision

DEFAULT_WORDLIST = Path(__file__).parent / "data" / "toxic_words_en.txt"
_TOKEN_RE = re.compile(r"[a-z0-9']+")


class ToxicityConfig(StrictModel):
    enabled: bool = True
    wordlist_path: str | None = None  # one word or phrase per line; '#' comments
    max_word_ratio: float = Field(0.01, ge=0, le=1)  # remove when toxic words / words exceeds this
    min_word_hits: int = Field(3, ge=0)  # ... and at least this many hits (one swear word in a long page is not toxic)
    classifier_path: str | None = None  # optional fastText model; label below
    classifier_label: str = "toxic"
    classifier_threshold: float = Field(0.9, ge=0, le=1)


@lru_cache(maxsize=8)
def load_wordlist(path: str | None) -> tuple[frozenset[str], tuple[str, ...]]:
    p = Path(path).expanduser() if path else DEFAULT_WORDLIST
    if not p.is_file():
        raise FileNotFoundError(f"filters.toxicity.wordlist_path: {p} does not exist")
    words, phrases = set(), []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        (phrases.append(line) if " " in line else words.add(line))
    return frozenset(words), tuple(phrases)


def toxicity(text: str, cfg: ToxicityConfig, classifier=None) -> Decision:
    words, phrases = load_wordlist(cfg.wordlist_path)
    low = text.lower()
    tokens = _TOKEN_RE.findall(low)
    hits = sum(1 for t in tokens if t in words) + sum(low.count(p) for p in phrases)
    ratio = hits / len(tokens) if tokens else 0.0
    scores: dict = {"toxic_words": hits, "toxic_word_ratio": ratio, "toxicity_score": None}
    if classifier is not None:
        labels, probs = classifier.predict(text.replace("\n", " "), k=-1)
        probs_by = {lab.removeprefix("__label__"): float(p) for lab, p in zip(labels, probs)}
        scores["toxicity_score"] = probs_by.get(cfg.classifier_label, 0.0)
        if scores["toxicity_score"] > cfg.classifier_threshold:
            return Decision(False, "toxicity_classifier", scores)
    if hits >= cfg.min_word_hits and ratio > cfg.max_word_ratio:
        return Decision(False, "toxic_words", scores)
    return Decision(True, None, scores)
