"""Stable hashes used for ids and file fingerprints."""
from __future__ import annotations

import hashlib
import os

import xxhash


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_id(text: str, source: str = "") -> str:
    """A stable id for a record without one: 128-bit xxh3 of source + text (same input, same id, every run)."""
    return xxhash.xxh3_128_hexdigest(f"{source}\x00{text}".encode("utf-8", "surrogatepass"))


def short_hash(*parts: str, length: int = 16) -> str:
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:length]
