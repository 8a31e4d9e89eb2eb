"""Parquet shard writer: zstd, size-bounded shards, atomic (temp + rename), with sha256 and row counts."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import atomic_path
from corpora.hashing import sha256_file


@dataclass
class ShardInfo:
    path: str  # relative to the output root when reported in a manifest
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShardWriter:
    """Buffers rows and writes `<prefix>-NNNNN.parquet` files of at most `max_rows` rows / `max_mb` MB
    (uncompressed Arrow size) into `directory`. Every shard has exactly `schema`.

    Use as a context manager or call `close()`; `shards` lists what was written.
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, max_rows: int = 100_000,
                 max_mb: float = 256.0, prefix: str = "part", start_index: int = 0,
                 compression_level: int = 3):
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self.directory = Path(directory)
        self.schema = schema
        self.max_rows = max_rows
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.prefix = prefix
        self.index = start_index
        self.compression_level = compression_level
        self.shards: list[ShardInfo] = []
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0
        self.rows_written = 0

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if rows:
            self.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        for batch in table.to_batches(max_chunksize=max(1, min(self.max_rows, 10_000))):
            self._append(batch)

    def _append(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            room = self.max_rows - self._rows
            part = batch.slice(0, room)
            batch = batch.slice(part.num_rows)
            self._batches.append(part)
            self._rows += part.num_rows
            self._bytes += part.nbytes
            if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
                self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_batches(self._batches, schema=self.schema)
        path = self.directory / f"{self.prefix}-{self.index:05d}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd", compression_level=self.compression_level)
        self.shards.append(ShardInfo(str(path), table.num_rows, path.stat().st_size, sha256_file(path)))
        self.rows_written += table.num_rows
        self.index += 1
        self._batches, self._rows, self._bytes = [], 0, 0

    def close(self) -> list[ShardInfo]:
        self.flush()
        return self.shards


def write_table_atomic(path: str | os.PathLike, table: pa.Table) -> ShardInfo:
    """One Parquet file, atomically (used for staging files)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return ShardInfo(str(path), table.num_rows, path.stat().st_size, sha256_file(path))


def count_rows(paths: Iterable[str | os.PathLike]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
