"""Exact deduplication on a hash of the normalised text.

Normalisation for "exact" is deliberately light (Unicode NFC, whitespace runs collapsed, ends stripped; case folded
only when asked): two documents are exact duplicates when a reader could not tell them apart.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xxhash

from filters.dedup.clusters import Clusters, choose_kept, clusters_from_keys, id_ranks

WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ExactConfig:
    lowercase: bool = False
    unicode_form: str = "NFC"


def normalise_for_exact(text: str, config: ExactConfig = ExactConfig()) -> str:
    if not text.isascii():
        text = unicodedata.normalize(config.unicode_form, text)
    text = WHITESPACE.sub(" ", text).strip()
    return text.lower() if config.lowercase else text


def text_keys(texts: Sequence[str], config: ExactConfig = ExactConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(keys uint64, valid bool): xxh3-64 of the normalised text; empty texts are not keyed."""
    keys = np.zeros(len(texts), dtype=np.uint64)
    valid = np.zeros(len(texts), dtype=bool)
    for i, t in enumerate(texts):
        norm = normalise_for_exact(t or "", config)
        if norm:
            keys[i] = xxhash.xxh3_64_intdigest(norm.encode("utf-8", "surrogatepass"))
            valid[i] = True
    return keys, valid


def exact_duplicates(texts: Sequence[str], ids: Sequence[str] | None = None, quality=None,
                     config: ExactConfig = ExactConfig(), keep: str = "highest_quality") -> Clusters:
    """Exact duplicate clusters of `texts` (in memory) and the member each keeps."""
    keys, valid = text_keys(texts, config)
    n = len(texts)
    roots = clusters_from_keys([keys], valid, n)
    rank = np.arange(n, dtype=np.int64) if ids is None else id_ranks(ids)
    lengths = np.fromiter((len(t or "") for t in texts), dtype=np.int64, count=n)
    return choose_kept(roots, rank, lengths, quality, policy=keep)
