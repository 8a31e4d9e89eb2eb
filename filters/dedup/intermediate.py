"""Validated intermediate files: every Parquet file a dedup step writes gets a sidecar `<file>.meta.json` with its
row count and byte size, written only after the file was re-opened and checked. Readers check both before using
the file, so a truncated or half-written intermediate is an error that names it, never a wrong result later.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import atomic_path, atomic_write_json


class IntermediateError(RuntimeError):
    """An intermediate file is missing, incomplete, truncated or does not belong to this run."""


def meta_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


class ValidatedParquetWriter:
    """Streams record batches into `path` (atomically); `close()` re-reads the footer, checks rows and bytes,
    then writes the sidecar. Until the sidecar exists the file does not count as written."""

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, meta: dict[str, Any] | None = None,
                 row_group_size: int = 65536):
        self.path = Path(path)
        self.schema = schema
        self.meta = dict(meta or {})
        self.row_group_size = row_group_size
        meta_path(self.path).unlink(missing_ok=True)  # an old sidecar must never vouch for a new file
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows == 0:
            return
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        self._writer.write_table(table.cast(self.schema), row_group_size=self.row_group_size)
        self.rows += data.num_rows

    def close(self) -> dict[str, Any]:
        self._writer.close()
        self._ctx.__exit__(None, None, None)
        found = pq.ParquetFile(self.path).metadata.num_rows
        if found != self.rows:
            raise IntermediateError(f"{self.path}: wrote {self.rows} rows but the file holds {found}")
        meta = {**self.meta, "rows": self.rows, "bytes": self.path.stat().st_size, "columns": self.schema.names}
        atomic_write_json(meta_path(self.path), meta)
        return meta

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "ValidatedParquetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_validated(path: str | os.PathLike, table: pa.Table, meta: dict[str, Any] | None = None) -> dict:
    with ValidatedParquetWriter(path, table.schema, meta) as w:
        w.write(table)
    return json.loads(meta_path(path).read_text())


def read_meta(path: str | os.PathLike, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar of `path`, after checking the file's size, footer and row count against it (and any `expect`
    entries, e.g. the config fingerprint)."""
    path = Path(path)
    mp = meta_path(path)
    if not path.exists():
        raise IntermediateError(f"{path}: intermediate file is missing (did the step that writes it run?)")
    if not mp.exists():
        raise IntermediateError(f"{path}: no {mp.name}: the step writing it did not finish; rerun that step")
    try:
        meta = json.loads(mp.read_text())
    except ValueError as e:
        raise IntermediateError(f"{mp}: unreadable sidecar ({e}); rerun the step that writes {path.name}") from e
    size = path.stat().st_size
    if size != meta.get("bytes"):
        raise IntermediateError(
            f"{path}: truncated or rewritten: {size} bytes on disk, {meta.get('bytes')} recorded; rerun the step "
            "that writes it")
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:  # pyarrow raises several types for a damaged footer
        raise IntermediateError(f"{path}: not a readable Parquet file ({e}); rerun the step that writes it") from e
    if rows != meta.get("rows"):
        raise IntermediateError(f"{path}: holds {rows} rows, {meta.get('rows')} recorded")
    for key, want in (expect or {}).items():
        if meta.get(key) != want:
            raise IntermediateError(
                f"{path}: made with {key}={meta.get(key)!r}, this run expects {want!r}; clear the work folder "
                "or rerun its steps with the same settings")
    return meta


def iter_validated(path: str | os.PathLike, columns: list[str] | None = None,
                   expect: dict[str, Any] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a validated file; the total is checked again at the end."""
    meta = read_meta(path, expect)
    seen = 0
    try:
        pf = pq.ParquetFile(path)
        for rg in range(pf.num_row_groups):
            batch = pf.read_row_group(rg, columns=columns)
            seen += batch.num_rows
            yield from batch.to_batches()
    except (OSError, pa.ArrowException) as e:
        raise IntermediateError(f"{path}: unreadable ({e}); rerun the step that writes it") from e
    if seen != meta["rows"]:
        raise IntermediateError(f"{path}: read {seen} rows, {meta['rows']} recorded")


def read_validated(path: str | os.PathLike, columns: list[str] | None = None,
                   expect: dict[str, Any] | None = None) -> pa.Table:
    meta = read_meta(path, expect)
    try:
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise IntermediateError(f"{path}: unreadable ({e}); rerun the step that writes it") from e
    if table.num_rows != meta["rows"]:
        raise IntermediateError(f"{path}: read {table.num_rows} rows, {meta['rows']} recorded")
    return table
