"""Dedup keys: what each key-based method (url, exact, minhash) computes per document.

A method maps a batch of documents to `num_keys` uint64 keys per document plus a validity mask; two documents
are duplicates when they share any key (URL: 1 key, exact: 1 key, MinHash: one per LSH band). The out-of-core
pipeline only ever sees these keys, so all three methods share its bucketing, clustering and keep policy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from filters.dedup import textnorm
from filters.dedup.exact import ExactConfig, text_keys
from filters.dedup.minhash import MinHashConfig, band_keys, minhash_signatures, sketches
from filters.dedup.urls import UrlNormConfig, url_keys


class KeyBatch(NamedTuple):
    keys: np.ndarray  # (n, num_keys) uint64
    valid: np.ndarray  # (n,) bool
    sketch: np.ndarray | None = None  # (n, sketch_width) uint16 for the false-positive check, or None


class KeyMethod(Protocol):
    name: str

    @property
    def num_keys(self) -> int: ...

    @property
    def sketch_width(self) -> int:
        """uint16 values per document kept for checking candidates (0: no check)."""

    @property
    def verify_threshold(self) -> float: ...

    def keys(self, texts: Sequence[str], urls: Sequence[str | None]) -> KeyBatch: ...

    def fingerprint(self) -> dict: ...


@dataclass(frozen=True)
class MinHashKeys:
    config: MinHashConfig = field(default_factory=MinHashConfig)
    name: str = "minhash"

    @property
    def num_keys(self) -> int:
        return self.config.num_bands

    @property
    def sketch_width(self) -> int:
        return self.config.num_perm if self.config.verify_threshold > 0 else 0

    @property
    def verify_threshold(self) -> float:
        return self.config.verify_threshold

    def keys(self, texts, urls=None) -> KeyBatch:
        sig = minhash_signatures(texts, self.config)
        return KeyBatch(band_keys(sig, self.config), sig.valid, sketches(sig) if self.sketch_width else None)

    def fingerprint(self) -> dict:
        return {"method": self.name, **self.config.fingerprint()}


@dataclass(frozen=True)
class ExactKeys:
    config: ExactConfig = field(default_factory=ExactConfig)
    name: str = "exact"
    num_keys: int = 1
    sketch_width: int = 0
    verify_threshold: float = 0.0

    def keys(self, texts, urls=None) -> KeyBatch:
        keys, valid = text_keys(texts, self.config)
        return KeyBatch(keys.reshape(-1, 1), valid)

    def fingerprint(self) -> dict:
        return {"method": self.name, **asdict(self.config), "hash_version": textnorm.HASH_VERSION}


@dataclass(frozen=True)
class UrlKeys:
    config: UrlNormConfig = field(default_factory=UrlNormConfig)
    name: str = "url"
    num_keys: int = 1
    sketch_width: int = 0
    verify_threshold: float = 0.0

    def keys(self, texts, urls) -> KeyBatch:
        keys, valid = url_keys(urls, self.config)
        return KeyBatch(keys.reshape(-1, 1), valid)

    def fingerprint(self) -> dict:
        return {"method": self.name, **asdict(self.config), "hash_version": textnorm.HASH_VERSION}
