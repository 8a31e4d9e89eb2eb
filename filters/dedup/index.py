"""Dedup against a prebuilt index: the kept documents of earlier corpora, as signature files, so a new run removes
what those corpora already hold without reading or rewriting them.

An index folder holds one folder per key method, in the signature layout of `outofcore.py` (one validated Parquet
file of `id, id_hash, length, quality, valid, k0.., [sketch]` per earlier corpus part):
  <index>/<method>/sigs/NNNNN.parquet
Every run that dedups writes one for its published rows (`<output>/dedup_index/`), so `--set
dedup.minhash.index=<that output>` on the next run uses it. Index documents join the bucket and cluster steps like
any other shard, after this run's shards (so this run's rows keep their global indexes); a cluster that contains
an index document keeps the index document (it is already published) and removes every document of this run in it,
with `reason_detail` = the index document's id.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa

from filters.dedup.intermediate import IntermediateError, ValidatedParquetWriter, iter_validated, read_meta
from filters.dedup.outofcore import SIG_DIR, id_hash, shard_name

INDEX_DIR = "dedup_index"  # in a run's output folder


def resolve_index(path: str | os.PathLike, method: str) -> Path:
    """The `<method>/` folder of an index given as the index folder itself or as a run's output folder."""
    p = Path(path).expanduser()
    for base in (p, p / INDEX_DIR):
        if (base / method / SIG_DIR).is_dir():
            return (base / method).resolve()
    raise FileNotFoundError(f"dedup.{method}.index: {path} holds no {method} index (expected "
                            f"{p}/{method}/{SIG_DIR}/ or {p}/{INDEX_DIR}/{method}/{SIG_DIR}/; a run writes one to "
                            f"<output>/{INDEX_DIR}/ when it dedups with {method})")


def index_files(dirs: Sequence[str | os.PathLike], fingerprint: dict | None = None) -> list[Path]:
    """The signature files of the index `<method>/` folders; a file made with other settings is an error."""
    files = []
    for d in dirs:
        found = sorted(p for p in (Path(d) / SIG_DIR).glob("*.parquet") if not p.name.startswith("."))
        for f in found:
            meta = read_meta(f)
            if fingerprint is not None and meta["fingerprint"] != fingerprint:
                raise IntermediateError(f"{f}: this index was built with other {fingerprint.get('method')} settings "
                                        f"({meta['fingerprint']}) than this run ({fingerprint}); rebuild it or use "
                                        "the same settings")
        files += found
    return files


def write_index(method_work: str | os.PathLike, kept_ids: Iterable[str], dest: str | os.PathLike) -> dict:
    """`dest/<method>/sigs/00000.parquet`: the signature rows of `method_work` whose id is in `kept_ids` (the
    run's published rows). Streams the signature files; holds one uint64 per kept id."""
    work = Path(method_work)
    keep = np.unique(np.fromiter((id_hash(i) for i in kept_ids), dtype=np.uint64))
    files = sorted(p for p in (work / SIG_DIR).glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise IntermediateError(f"{work}: no signature files to build an index from")
    meta = read_meta(files[0])
    out = Path(dest) / work.name / SIG_DIR / shard_name(0)
    schema = None
    rows = 0
    writer = None
    for f in files:
        for batch in iter_validated(f):
            if writer is None:
                schema = batch.schema
                writer = ValidatedParquetWriter(out, schema, {"step": "signatures", "rank": 0, "world_size": 1,
                                                              "fingerprint": meta["fingerprint"], "index": True})
            h = batch.column(batch.schema.get_field_index("id_hash")).to_numpy()
            sel = np.isin(h, keep)
            if sel.any():
                part = pa.Table.from_batches([batch]).filter(pa.array(sel))
                writer.write(part)
                rows += part.num_rows
    if writer is None:
        return {"method": work.name, "documents": 0}
    writer.close()
    return {"method": work.name, "documents": rows, "path": str(out)}


def override_with_index(roots: np.ndarray, n_own: int, own_removed: np.ndarray, kept: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, int]:
    """Clusters (`roots` over own + index documents) that contain an index document keep it: every own document in
    them is removed and its kept member becomes the cluster's first index document. Returns (removed, kept,
    number of own documents removed because their cluster holds an index document)."""
    n = len(roots)
    is_index = np.zeros(n, dtype=bool)
    is_index[n_own:] = True
    first_index = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(is_index)
    # the smallest index node per root (reverse assignment: the last write wins, so iterate from the largest)
    first_index[roots[idx[::-1]]] = idx[::-1]
    rep = first_index[roots]
    hit = (rep >= 0) & ~is_index  # (inactive documents are singletons in `roots`: never hit)
    removed = own_removed | hit
    kept = np.where(hit, rep, kept)
    return removed, kept, int(hit[:n_own].sum())

