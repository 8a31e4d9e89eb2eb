"""A Bloom filter with explicit sizing, fixed recorded seeds and a hard memory limit.

Sizing is the textbook optimum: m = -n ln(p) / ln(2)^2 bits, k = round(m / n * ln 2) hashes. If m/8 bytes exceed
`max_memory`, `BloomFilter.create` refuses with the numbers instead of silently degrading (DCLM's filter grew past
RAM without a word). Positions use double hashing (Kirsch-Mitzenmacher) of one 64-bit item hash with two seeded
mixes, so the filter is deterministic across runs and machines, and filters of the same sizing and seed can be
OR-ed (the union of two workers' filters).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from corpora.atomic import atomic_path, atomic_write_json
from filters.dedup.intermediate import IntermediateError
from filters.dedup.textnorm import fmix64

BLOOM_FORMAT = 1
_SEED_SECOND = np.uint64(0x5851F42D4C957F2D)
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40, "ki": 2 ** 10, "mi": 2 ** 20,
          "gi": 2 ** 30, "ti": 2 ** 40}


class BloomTooLarge(ValueError):
    """The requested capacity / false-positive rate needs more memory than allowed."""


def parse_bytes(value: int | float | str) -> int:
    """'2GB', '512MiB', 1e9 -> bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE.match(value)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise ValueError(f"not a memory size: {value!r} (examples: 512MB, 2GiB, 1e9)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


@dataclass(frozen=True)
class BloomSizing:
    expected_items: int
    false_positive_rate: float
    num_bits: int
    num_hashes: int
    seed: int

    @property
    def num_bytes(self) -> int:
        return self.num_bits // 8

    @classmethod
    def for_capacity(cls, expected_items: int, false_positive_rate: float, seed: int = 0) -> "BloomSizing":
        if expected_items < 1:
            raise ValueError(f"bloom expected_items must be >= 1, got {expected_items}")
        if not 0 < false_positive_rate < 1:
            raise ValueError(f"bloom false_positive_rate must be in (0, 1), got {false_positive_rate}")
        bits = math.ceil(-expected_items * math.log(false_positive_rate) / math.log(2) ** 2)
        bits = max(64, (bits + 63) // 64 * 64)  # whole uint64 words
        hashes = max(1, round(bits / expected_items * math.log(2)))
        return cls(expected_items, false_positive_rate, bits, hashes, seed)

    def describe(self) -> str:
        return (f"Bloom filter: {self.expected_items:,} items at fpr {self.false_positive_rate:g} -> "
                f"{self.num_bytes:,} bytes ({self.num_bytes / 2 ** 20:.1f} MiB), {self.num_hashes} hashes, "
                f"seed {self.seed}")

    def check_memory(self, max_memory: int | str | None) -> None:
        if max_memory is None:
            return
        limit = parse_bytes(max_memory)
        if self.num_bytes > limit:
            raise BloomTooLarge(
                f"{self.describe()} exceeds max_memory {limit:,} bytes; raise max_memory, lower expected_items, "
                f"or accept a higher false_positive_rate (refusing rather than silently degrading)")


class BloomFilter:
    """Bits in a uint64 array. Items are 64-bit hashes (see `textnorm`/xxhash); all operations are vectorised."""

    def __init__(self, sizing: BloomSizing, words: np.ndarray | None = None):
        self.sizing = sizing
        n_words = sizing.num_bits // 64
        self.words = np.zeros(n_words, dtype=np.uint64) if words is None else words
        if len(self.words) != n_words:
            raise ValueError(f"bloom bit array has {len(self.words)} words, sizing needs {n_words}")
        seed = np.uint64(sizing.seed)
        self._seed1 = fmix64(np.array([seed], dtype=np.uint64))[0]
        self._seed2 = fmix64(np.array([seed ^ _SEED_SECOND], dtype=np.uint64))[0]

    @classmethod
    def create(cls, expected_items: int, false_positive_rate: float, max_memory: int | str | None = None,
               seed: int = 0) -> "BloomFilter":
        sizing = BloomSizing.for_capacity(expected_items, false_positive_rate, seed)
        sizing.check_memory(max_memory)
        return cls(sizing)

    def _positions(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.uint64)
        with np.errstate(over="ignore"):
            h1 = fmix64(items ^ self._seed1)
            h2 = fmix64(items ^ self._seed2) | np.uint64(1)
            i = np.arange(self.sizing.num_hashes, dtype=np.uint64)
            return (h1[:, None] + i[None, :] * h2[:, None]) % np.uint64(self.sizing.num_bits)

    def contains(self, items: np.ndarray) -> np.ndarray:
        pos = self._positions(items)
        bits = (self.words[pos >> np.uint64(6)] >> (pos & np.uint64(63))) & np.uint64(1)
        return bits.all(axis=1) if len(pos) else np.zeros(0, dtype=bool)

    def add(self, items: np.ndarray) -> None:
        pos = self._positions(items).ravel()
        np.bitwise_or.at(self.words, pos >> np.uint64(6), np.uint64(1) << (pos & np.uint64(63)))

    def union_inplace(self, other: "BloomFilter") -> None:
        if other.sizing != self.sizing:
            raise ValueError(f"cannot union Bloom filters of different sizing/seed: {other.sizing} vs {self.sizing}")
        np.bitwise_or(self.words, other.words, out=self.words)

    def fill_ratio(self) -> float:
        return float(np.unpackbits(self.words.view(np.uint8)).mean()) if len(self.words) else 0.0

    def copy(self) -> "BloomFilter":
        return BloomFilter(self.sizing, self.words.copy())

    # --- files: raw bits + a JSON sidecar with the sizing, seed and byte count -------------------------------

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        path = Path(path)
        with atomic_path(path) as tmp:
            self.words.tofile(tmp)
        atomic_write_json(path.with_name(path.name + ".meta.json"),
                          {"format": BLOOM_FORMAT, **asdict(self.sizing), "bytes": path.stat().st_size,
                           **(extra or {})})

    @staticmethod
    def read_sizing(path: str | os.PathLike) -> tuple[BloomSizing, dict]:
        path = Path(path)
        mp = path.with_name(path.name + ".meta.json")
        if not path.exists() or not mp.exists():
            raise IntermediateError(f"{path}: Bloom filter or its sidecar is missing; rerun the step that builds it")
        meta = json.loads(mp.read_text())
        fields = {k: meta[k] for k in ("expected_items", "false_positive_rate", "num_bits", "num_hashes", "seed")}
        sizing = BloomSizing(**fields)
        size = path.stat().st_size
        if size != meta["bytes"] or size != sizing.num_bytes:
            raise IntermediateError(f"{path}: truncated Bloom filter: {size} bytes on disk, {meta['bytes']} "
                                    "recorded; rerun the step that builds it")
        return sizing, meta

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BloomFilter":
        sizing, _ = cls.read_sizing(path)
        return cls(sizing, np.fromfile(path, dtype=np.uint64))

    def union_file(self, path: str | os.PathLike, chunk_words: int = 1 << 22) -> None:
        """OR a saved filter into this one, chunk by chunk (never two full copies in memory)."""
        sizing, _ = self.read_sizing(path)
        if sizing != self.sizing:
            raise IntermediateError(f"{path}: Bloom sizing {sizing} differs from this run's {self.sizing}")
        with open(path, "rb") as fh:
            for start in range(0, len(self.words), chunk_words):
                block = np.fromfile(fh, dtype=np.uint64, count=min(chunk_words, len(self.words) - start))
                np.bitwise_or(self.words[start:start + len(block)], block, out=self.words[start:start + len(block)])
