"""Real text from ../shared for the dedup tests, and near-duplicates made from it at known mutation rates.

The true Jaccard of a pair is computed exactly (`textnorm.shingle_set`), never assumed from the mutation rate.
"""
from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_file(*parts: str) -> Path:
    p = SHARED.joinpath("data", *parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (dedup tests that read ../shared skip without it)")
    return p


@lru_cache(maxsize=1)
def gutenberg_words() -> tuple[str, ...]:
    """Words of the Gutenberg time-slice training texts (one long line each)."""
    folder = shared_file("gutenberg", "slices")
    words: list[str] = []
    for f in sorted(folder.glob("*/train.txt")):
        words.extend(f.read_text(encoding="utf-8", errors="replace").split())
    if len(words) < 100_000:
        pytest.skip(f"too little text under {folder}")
    return tuple(words)


def web_texts() -> list[str]:
    path = shared_file("web", "dclm_quality_labelled.jsonl")
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def distinct_docs(n: int, seed: int = 0, min_words: int = 120, max_words: int = 300) -> list[str]:
    """n documents of consecutive real text taken from non-overlapping stretches (so no accidental duplicates)."""
    words = gutenberg_words()
    rng = random.Random(seed)
    stride = len(words) // n
    if stride < max_words:
        raise ValueError(f"not enough text for {n} distinct documents of {max_words} words")
    docs = []
    for i in range(n):
        length = rng.randint(min_words, max_words)
        start = i * stride + rng.randint(0, stride - length)
        docs.append(" ".join(words[start:start + length]))
    return docs


def mutate(text: str, rate: float, rng: random.Random, vocabulary: tuple[str, ...]) -> str:
    """Each word, with probability `rate`, is deleted, substituted or followed by an inserted word."""
    out = []
    for w in text.split():
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rng.choice(vocabulary))
        elif r < rate:
            out.extend((w, rng.choice(vocabulary)))
        else:
            out.append(w)
    return " ".join(out)
