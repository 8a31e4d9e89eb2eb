"""Publish staged parts as the run's output shards of one kind's folder (`data/`, `rejected/`, `data/lang=de/`, ...;
which folder: the run's layout, `corpora/layout.py`).

A part is a staged Parquet file or a table in memory (a generator's rows: published without staging them again).
Shards are rewritten in part order into a temp folder and swapped in, so a reader sees either the old or the new
set, and reruns give byte-identical row order. Parts with differing columns are unified (missing columns become
nulls), so every shard of one folder has one schema.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.shards import ShardInfo, ShardWriter


Part = Path | pa.Table


def unified_schema(files: list[Part], fallback: pa.Schema) -> pa.Schema:
    schemas = [f.schema if isinstance(f, pa.Table) else pq.read_schema(f) for f in files]
    if not schemas:
        return fallback
    return pa.unify_schemas(schemas, promote_options="permissive")


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def publish_kind(out_dir: Path, kind: str, files: Iterable[Part], fallback_schema: pa.Schema, *,
                 shard_rows: int, shard_mb: float, columns: list[str] | None = None) -> list[ShardInfo]:
    """`columns`: publish only these columns of the staged parts (in this order), e.g. `id` + the attributes."""
    files = [f if isinstance(f, pa.Table) else Path(f) for f in files]
    schema = unified_schema(files, fallback_schema)
    if columns is not None:
        schema = pa.schema([schema.field(c) if c in schema.names else fallback_schema.field(c) for c in columns])
    tmp = out_dir / f".{kind}.publishing"
    if tmp.exists():
        shutil.rmtree(tmp)
    writer = ShardWriter(tmp, schema, max_rows=shard_rows, max_mb=shard_mb)
    for f in files:
        if isinstance(f, pa.Table):
            writer.write_table(conform(f, schema))
            continue
        pf = pq.ParquetFile(f)
        for rg in range(pf.num_row_groups):
            writer.write_table(conform(pf.read_row_group(rg), schema))
    shards = writer.close()
    final = out_dir / kind
    old = out_dir / f".{kind}.old"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    tmp.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return [ShardInfo(str(Path(kind) / Path(s.path).name), s.rows, s.bytes, s.sha256) for s in shards]
