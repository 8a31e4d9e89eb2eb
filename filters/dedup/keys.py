"""Dedup keys: what each key-based method (url, exact, minhash) computes per document.

A method maps a batch of documents to `num_keys` uint64 keys per document plus a validity mask; two documents
are duplicates when they share any key (URL: 1 key, exact: 1 key, MinHash: one per LSH band). The out-of-core
pipeline only ever sees these keys, so all three methods share its bucketing, clustering and keep policy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

import numpy as np

from filters.dedup import textnorm
from filters.dedup.exact import ExactConfig, text_keys
from filters.dedup.minhash import MinHashConfig, band_keys, minhash_signatures
from filters.dedup.urls import UrlNormConfig, url_keys


class KeyMethod(Protocol):
    name: str

    @property
    def num_keys(self) -> int: ...

    def keys(self, texts: Sequence[str], urls: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """(keys (n, num_keys) uint64, valid (n,) bool)."""

    def fingerprint(self) -> dict: ...


@dataclass(frozen=True)
class MinHashKeys:
    config: MinHashConfig = field(default_factory=MinHashConfig)
    name: str = "minhash"

    @property
    def num_keys(self) -> int:
        return self.config.num_bands

    def keys(self, texts, urls=None):
        sig = minhash_signatures(texts, self.config)
        return band_keys(sig, self.config), sig.valid

    def fingerprint(self) -> dict:
        return {"method": self.name, **self.config.fingerprint()}


@dataclass(frozen=True)
class ExactKeys:
    config: ExactConfig = field(default_factory=ExactConfig)
    name: str = "exact"
    num_keys: int = 1

    def keys(self, texts, urls=None):
        keys, valid = text_keys(texts, self.config)
        return keys.reshape(-1, 1), valid

    def fingerprint(self) -> dict:
        return {"method": self.name, **asdict(self.config), "hash_version": textnorm.HASH_VERSION}


@dataclass(frozen=True)
class UrlKeys:
    config: UrlNormConfig = field(default_factory=UrlNormConfig)
    name: str = "url"
    num_keys: int = 1

    def keys(self, texts, urls):
        keys, valid = url_keys(urls, self.config)
        return keys.reshape(-1, 1), valid

    def fingerprint(self) -> dict:
        return {"method": self.name, **asdict(self.config), "hash_version": textnorm.HASH_VERSION}
