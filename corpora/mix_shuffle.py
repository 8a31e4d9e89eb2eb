"""The out-of-core shuffle of a mixture: scatter every selected copy into buckets, then sort each bucket.

Each output row (a copy of a document: source, id, epoch) gets a 64-bit key = mix(h, seed, epoch); its bucket is
the key's rank among `n` equal ranges, so buckets in order, each sorted by key, are the whole mixture sorted by
key: a seeded uniform permutation that does not depend on the number of buckets or on how the inputs are split
into files. Memory: the scatter holds `buffer_mb` of rows, the gather one bucket (the number of buckets is chosen
so that one holds about `bucket_mb`).

Scatter, per source file: `<file>.parquet` (rows with `_key`, one row group per bucket per flush) + `done.json`
(its key, the row groups of each bucket, rows, tokens). Gather, per bucket: `part-<bucket>.parquet` + a done
marker with its key. Both are redone only when their key changes, so a killed run resumes where it stopped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpora.atomic import atomic_path, atomic_write_json, read_json
from corpora.config import StrictModel
from corpora.hashing import short_hash
from corpora.mix_plan import MixPlan, seed_word, splitmix64
from corpora.mix_sources import ResolvedSource, SourceFile
from pydantic import Field

KEY = "_key"
OUT_FIRST = [pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("source", pa.string()),
             pa.field("epoch", pa.int32()), pa.field("tokens", pa.int32())]
RENAMED = {"source": "doc_source", "epoch": "doc_epoch", "tokens": "doc_tokens"}


class ShuffleConfig(StrictModel):
    bucket_mb: float = Field(256.0, gt=0)  # about this much data is sorted in memory at once
    buffer_mb: float = Field(64.0, gt=0)  # rows held per source file before they are written to their buckets


def output_columns(src: ResolvedSource) -> list[tuple[str, str]]:
    """(input column, output name) of the columns a source carries into the mixture, besides id and text."""
    s = src.spec
    names = [n for n in src.schema.names if n not in (s.id_field, s.text_field)]
    if s.columns is not None:
        unknown = [c for c in s.columns if c not in src.schema.names]
        if unknown:
            raise ValueError(f"source '{s.name}': columns: unknown column '{unknown[0]}' "
                             f"(columns: {', '.join(src.schema.names)})")
        names = [n for n in names if n in s.columns]
    return [(n, RENAMED.get(n, n)) for n in names]


def output_schema(sources: list[ResolvedSource], renamed: bool = False) -> pa.Schema:
    """id, text, source, epoch, tokens + every carried column of every source (types unified; a column whose
    types cannot be unified names the two sources). `renamed` (some kept ids were renamed `<id>#n`): a JSON
    `metadata` column for their `original_id` when no source carries one (`original_id` when it is a struct)."""
    fields: dict[str, tuple[pa.Field, str]] = {}
    for src in sources:
        for col, out in output_columns(src):
            f = src.schema.field(col).with_name(out).with_nullable(True)
            if out in fields:
                try:
                    merged = pa.unify_schemas([pa.schema([fields[out][0]]), pa.schema([f])],
                                              promote_options="permissive")
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    raise ValueError(f"column '{out}' is {fields[out][0].type} in source '{fields[out][1]}' and "
                                     f"{f.type} in source '{src.name}' (select columns with `columns`)") from None
                fields[out] = (merged.field(0), fields[out][1])
            else:
                fields[out] = (f, src.name)
    if renamed and "metadata" not in fields:
        fields["metadata"] = (pa.field("metadata", pa.string()), "")
    elif renamed and not (pa.types.is_string(fields["metadata"][0].type)
                          or pa.types.is_large_string(fields["metadata"][0].type)) and "original_id" not in fields:
        fields["original_id"] = (pa.field("original_id", pa.string()), "")
    return pa.schema(OUT_FIRST + [f for f, _ in fields.values()])


def bucket_of(keys: np.ndarray, n: int) -> np.ndarray:
    return (((keys >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


def shuffle_keys(h: np.ndarray, epoch: np.ndarray, seed: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return splitmix64(h ^ seed_word(seed, "shuffle") ^ (epoch.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [t.column(f.name).cast(f.type) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _index_rows(index_file: Path):
    """(row, h, tokens, group, id, original id) batches of one file's index, in row order (original id: None
    for a document that kept its id; a list when unique_kept_ids renamed some)."""
    pf = pq.ParquetFile(index_file)
    renamed = "original_id" in pf.schema_arrow.names
    cols = ["row", "h", "tokens", "group", "id"] + (["original_id"] if renamed else [])
    for b in pf.iter_batches(batch_size=65536, columns=cols):
        n = b.num_rows
        yield (b.column(0).to_numpy(), b.column(1).to_numpy(), b.column(2).to_numpy(), b.column(3).to_pylist(),
               b.column(4).to_pylist(), b.column(5).to_pylist() if renamed else [None] * n)


def _with_original_ids(meta: pa.Array, original: list, typ: pa.DataType) -> pa.Array:
    """The JSON `metadata` column with `original_id` on each renamed row (the one id policy)."""
    from corpora.staging import _with_original_id

    vals = meta.to_pylist()
    return pa.array([_with_original_id(m, o) if o is not None else m for m, o in zip(vals, original)], typ)


def scatter_file(src: ResolvedSource, sf: SourceFile, index_file: Path, count_key: str, plan: MixPlan,
                 out_dir: Path, nbuckets: int, schema: pa.Schema, cfg: ShuffleConfig, batch_rows: int = 8192) -> dict:
    """Write every copy the plan takes of this file's documents into its bucket; returns done.json."""
    key = short_hash(count_key, plan.key, str(nbuckets), schema.to_string(), length=16)
    done = read_json(out_dir / "done.json")
    if done and done.get("key") == key and (out_dir / "rows.parquet").exists():
        return done
    (out_dir / "done.json").unlink(missing_ok=True)
    s = src.spec
    carried = output_columns(src)
    cols = list(dict.fromkeys([s.text_field] + [c for c, _ in carried]))  # ids: from the index
    wschema = schema.append(pa.field(KEY, pa.uint64()))
    buckets: dict[int, list[int]] = {}
    buf: list[pa.Table] = []
    buffered = 0
    rows = tokens = 0
    idx = _index_rows(index_file)
    pending = None  # index rows read but beyond the current batch
    with atomic_path(out_dir / "rows.parquet") as tmp:
        writer = pq.ParquetWriter(tmp, wschema, compression="zstd", compression_level=1)
        rg = 0

        def flush():
            nonlocal buf, buffered, rg
            if not buf:
                return
            t = pa.concat_tables(buf)
            b = bucket_of(t.column(KEY).to_numpy(), nbuckets)
            order = np.argsort(b, kind="stable")
            t, b = t.take(pa.array(order)), b[order]
            edges = np.flatnonzero(np.diff(b)) + 1
            for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(b)]):
                writer.write_table(t.slice(lo, hi - lo), row_group_size=max(1, hi - lo))
                buckets.setdefault(int(b[lo]), []).append(rg)
                rg += 1
            buf, buffered = [], 0

        row0 = 0
        for t in src.read(sf, cols, batch_rows):
            n = t.num_rows
            parts = []
            while True:
                if pending is None:
                    pending = next(idx, None)
                    if pending is None:
                        break
                r, h, tok, g, di, do = pending
                inside = r < row0 + n
                k = int(inside.sum())
                if k:
                    parts.append((r[:k], h[:k], tok[:k], g[:k], di[:k], do[:k]))
                if k < len(r):
                    pending = (r[k:], h[k:], tok[k:], g[k:], di[k:], do[k:])
                    break
                pending = None
            if parts:
                r = np.concatenate([p[0] for p in parts]) - row0
                h = np.concatenate([p[1] for p in parts])
                tok = np.concatenate([p[2] for p in parts])
                g = [x for p in parts for x in p[3]]
                doc_ids = np.asarray([x for p in parts for x in p[4]], dtype=object)
                originals = np.asarray([x for p in parts for x in p[5]], dtype=object)
                c = plan.copies(h, g)
                sel = c > 0
                if sel.any():
                    c, r, h, tok = c[sel], r[sel], h[sel], tok[sel]
                    doc_ids, originals = doc_ids[sel], originals[sel]
                    rep = np.repeat(np.arange(len(c)), c)
                    starts = np.repeat(np.cumsum(c) - c, c)
                    epoch = (np.arange(len(rep)) - starts).astype(np.int32)
                    take = pa.array(r[rep])
                    texts = t.column(s.text_field).take(take)
                    # the count stage's ids (a content id for a row without one; renamed by unique_kept_ids)
                    ids = pa.array(list(doc_ids[rep]), pa.string())
                    out = {"id": ids, "text": texts, "source": pa.array([s.name] * len(rep), pa.string()),
                           "epoch": pa.array(epoch), "tokens": pa.array(tok[rep].astype(np.int32))}
                    for col, name in carried:
                        out[name] = t.column(col).take(take)
                    orig = list(originals[rep])
                    if any(o is not None for o in orig):
                        meta = out.get("metadata")
                        mtype = schema.field("metadata").type if "metadata" in schema.names else None
                        if mtype is not None and (pa.types.is_string(mtype) or pa.types.is_large_string(mtype)):
                            base = meta.cast(mtype) if meta is not None else pa.nulls(len(rep), mtype)
                            out["metadata"] = _with_original_ids(base, orig, mtype)
                        else:  # a struct metadata column cannot take a new key: its own column
                            out["original_id"] = pa.array(orig, pa.string())
                    ot = _conform(pa.table(out), schema)
                    ot = ot.append_column(KEY, pa.array(shuffle_keys(h[rep], epoch, plan.seed), pa.uint64()))
                    buf.append(ot)
                    buffered += ot.nbytes
                    rows += ot.num_rows
                    tokens += int(tok[rep].sum())
                    if buffered >= cfg.buffer_mb * 2 ** 20:
                        flush()
            row0 += n
        flush()
        writer.close()
    done = {"key": key, "rows": rows, "tokens": tokens, "buckets": {str(b): v for b, v in sorted(buckets.items())}}
    atomic_write_json(out_dir / "done.json", done)
    return done


def gather_bucket(bucket: int, scattered: list[tuple[Path, dict]], out_file: Path, schema: pa.Schema,
                  key: str) -> dict:
    """Sort one bucket's rows (from every scattered file) by key into `out_file`; returns its done record."""
    marker = out_file.with_suffix(".done.json")
    done = read_json(marker)
    if done and done.get("key") == key and out_file.exists():
        return done
    tables = []
    for path, d in scattered:
        rgs = d["buckets"].get(str(bucket))
        if rgs:
            tables.append(pq.ParquetFile(path / "rows.parquet").read_row_groups(rgs))
    wschema = schema.append(pa.field(KEY, pa.uint64()))
    t = pa.concat_tables(tables) if tables else wschema.empty_table()
    keys = t.column(KEY).to_numpy() if t.num_rows else np.zeros(0, np.uint64)
    order = np.lexsort((np.arange(len(keys)), keys))  # ties (a repeated source + id): in scatter order
    t = t.take(pa.array(order)).drop_columns([KEY])
    sk = keys[order]
    dup = int((np.diff(sk) == 0).sum()) if len(sk) > 1 else 0
    with atomic_path(out_file) as tmp:
        pq.write_table(t, tmp, compression="zstd")
    done = {"key": key, "rows": t.num_rows, "duplicate_keys": dup,
            "tokens": int(pc.sum(t.column("tokens")).as_py() or 0) if t.num_rows else 0}
    atomic_write_json(marker, done)
    return done
