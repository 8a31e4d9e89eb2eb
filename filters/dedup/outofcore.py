"""Out-of-core key dedup across shards and workers: signatures -> bucket edges -> clusters -> per-shard assignments.

Work folder layout (one folder per method run):
  sigs/NNNNN.parquet     one per input shard (datatrove rank): id, id_hash, length, quality, valid, k0.., sketch
  edges/NNNNN.parquet    one per bucket worker: (node, root) of the forest its key columns induce, sorted by node
  assign/NNNNN.parquet   one per input shard, row-aligned with it: id_hash, cluster_id, cluster_size, kept_id
  clusters.json          summary, written last
Each Parquet file has a validated sidecar (`intermediate.py`); a missing, truncated or foreign file stops the next
step with its name. Bucket workers split the (key column x hash partition) tasks among themselves and already
reduce their edges to a forest, so the single cluster step only merges W small forests and picks the kept
documents with vectorised numpy: it holds O(documents) integers, never the pairs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from corpora.atomic import atomic_write_json, read_json
from filters.dedup.clusters import (UnionFind, bucket_edges_from_candidates, candidate_buckets, choose_kept,
                                    id_ranks, verified_edges)
from filters.dedup.intermediate import (IntermediateError, ValidatedParquetWriter, iter_validated, read_meta,
                                        read_validated)
from filters.dedup.keys import KeyMethod

SIG_DIR, EDGE_DIR, ASSIGN_DIR, SUMMARY = "sigs", "edges", "assign", "clusters.json"
EDGE_SCHEMA = pa.schema([("node", pa.int64()), ("root", pa.int64())])
ASSIGN_SCHEMA = pa.schema([("id_hash", pa.uint64()), ("cluster_id", pa.string()), ("cluster_size", pa.int32()),
                           ("kept_id", pa.string())])


def shard_name(i: int) -> str:
    return f"{i:05d}.parquet"


def id_hash(doc_id: str) -> int:
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8", "surrogatepass"))


def sig_schema(num_keys: int, sketch_width: int = 0) -> pa.Schema:
    fields = [("id", pa.string()), ("id_hash", pa.uint64()), ("length", pa.int64()), ("quality", pa.float64()),
              ("valid", pa.bool_())] + [(f"k{j}", pa.uint64()) for j in range(num_keys)]
    if sketch_width:
        fields.append(("sketch", pa.binary(2 * sketch_width)))  # uint16 x width, for the false-positive check
    return pa.schema(fields)


def _sketch_array(sketch: np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(sketch, dtype="<u2")
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(2 * data.shape[1]), len(data),
                                                [None, pa.py_buffer(data.tobytes())])


def _sketch_matrix(arr: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    raw = np.frombuffer(arr.buffers()[1], dtype="<u2")
    return raw[arr.offset * width:(arr.offset + len(arr)) * width].reshape(len(arr), width)


# --- step 1: signatures -------------------------------------------------------------------------------------

class SignatureWriter:
    """Keys of one input shard, in document order (documents rejected upstream are left out)."""

    def __init__(self, work_dir: str | os.PathLike, method: KeyMethod, rank: int, world_size: int):
        self.method = method
        self.schema = sig_schema(method.num_keys, method.sketch_width)
        self.writer = ValidatedParquetWriter(
            Path(work_dir) / SIG_DIR / shard_name(rank), self.schema,
            {"step": "signatures", "rank": rank, "world_size": world_size, "fingerprint": method.fingerprint()})

    def add(self, ids: Sequence[str], texts: Sequence[str], urls: Sequence[str | None] | None = None,
            quality: Sequence[float | None] | None = None, active: Sequence[bool] | None = None) -> None:
        """Keys of a batch; rows with `active` False (rejected upstream) are skipped: they take no part in
        dedup, and the apply step skips them too, so rows stay aligned with the documents it sees."""
        if active is not None:
            keep = [i for i, a in enumerate(active) if a]
            if len(keep) != len(ids):
                ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
                urls = None if urls is None else [urls[i] for i in keep]
                quality = None if quality is None else [quality[i] for i in keep]
        n = len(ids)
        if n == 0:
            return
        width = self.method.sketch_width
        batch = self.method.keys(list(texts), list(urls) if urls is not None else [None] * n)
        q = np.full(n, np.nan) if quality is None else np.array(
            [np.nan if x is None else float(x) for x in quality], dtype=np.float64)
        cols = [pa.array(list(ids), pa.string()),
                pa.array(np.fromiter((id_hash(x) for x in ids), dtype=np.uint64, count=n)),
                pa.array(np.fromiter((len(t or "") for t in texts), dtype=np.int64, count=n)),
                pa.array(q), pa.array(np.asarray(batch.valid, dtype=bool))]
        cols += [pa.array(batch.keys[:, j]) for j in range(self.method.num_keys)]
        if width:
            cols.append(_sketch_array(batch.sketch))
        self.writer.write(pa.RecordBatch.from_arrays(cols, schema=self.schema))

    def close(self) -> dict[str, Any]:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


def _shard_files(folder: Path, what: str) -> list[Path]:
    files = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise IntermediateError(f"{folder}: no {what} files (did the previous step run?)")
    return files


def _num_keys(sig_file: Path) -> int:
    return sum(1 for c in read_meta(sig_file)["columns"] if c[0] == "k" and c[1:].isdigit())


def signature_layout(work_dir: str | os.PathLike, fingerprint: dict | None = None,
                     index: Sequence[str | os.PathLike] = ()) -> tuple[list[Path], np.ndarray]:
    """The signature files of all shards (validated, all ranks present) and each shard's first global index; the
    files of a prebuilt `index` (`filters/dedup/index.py`) follow, as extra shards."""
    files, offsets = _own_layout(work_dir, fingerprint)
    if not index:
        return files, offsets
    from filters.dedup.index import index_files

    extra = index_files(index, read_meta(files[0])["fingerprint"])
    rows = [read_meta(f)["rows"] for f in extra]
    return files + extra, np.concatenate([offsets, offsets[-1] + np.cumsum(rows, dtype=np.int64)])


def _own_layout(work_dir: str | os.PathLike, fingerprint: dict | None = None) -> tuple[list[Path], np.ndarray]:
    folder = Path(work_dir) / SIG_DIR
    files = _shard_files(folder, "signature")
    metas = [read_meta(f, {"fingerprint": fingerprint} if fingerprint is not None else None) for f in files]
    world = metas[0]["world_size"]
    names = {f.name for f in files}
    missing = [shard_name(r) for r in range(world) if shard_name(r) not in names]
    if missing or len(files) != world:
        raise IntermediateError(f"{folder}: expected signature files for ranks 0..{world - 1}; missing {missing}, "
                                f"found {len(files)} files")
    prints = {repr(m["fingerprint"]) for m in metas}
    if len(prints) > 1:
        raise IntermediateError(f"{folder}: signature files were made with different settings: {sorted(prints)}")
    offsets = np.zeros(world + 1, dtype=np.int64)
    np.cumsum([m["rows"] for m in metas], out=offsets[1:])
    return files, offsets


# --- step 2: bucket edges -----------------------------------------------------------------------------------

def bucket_tasks(num_keys: int, partitions: int) -> list[tuple[int, int]]:
    return [(k, p) for k in range(num_keys) for p in range(partitions)]


def _task_candidates(files: list[Path], offsets: np.ndarray, key_col: int, part: int, partitions: int):
    keys, index = [], []
    for shard, f in enumerate(files):
        row = offsets[shard]
        for batch in iter_validated(f, columns=["valid", f"k{key_col}"]):
            valid = batch.column(0).to_numpy(zero_copy_only=False)
            k = batch.column(1).to_numpy()
            sel = valid.copy()
            if partitions > 1:
                sel &= (k >> np.uint64(40)) % np.uint64(partitions) == part
            keys.append(k[sel])
            index.append(np.flatnonzero(sel) + row)
            row += batch.num_rows
    if not keys:  # no document reached this stage (empty input, everything removed before): no candidates
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate(keys), np.concatenate(index)


def _load_sketches(files: list[Path], offsets: np.ndarray, needed: np.ndarray, width: int):
    """Sketches of the `needed` documents only (sorted global indexes), read row group by row group."""
    out = np.zeros((len(needed), width), dtype=np.uint16)
    for shard, f in enumerate(files):
        row = offsets[shard]
        for batch in iter_validated(f, columns=["sketch"]):
            lo, hi = np.searchsorted(needed, [row, row + batch.num_rows])
            if hi > lo:
                out[lo:hi] = _sketch_matrix(batch.column(0), width)[needed[lo:hi] - row]
            row += batch.num_rows
    return lambda idx: out[np.searchsorted(needed, idx)]


def find_bucket_edges(work_dir: str | os.PathLike, rank: int = 0, world_size: int = 1, partitions: int = 1,
                      fingerprint: dict | None = None, index: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Bucket worker `rank`: for its share of (key column, hash partition) tasks, link documents with equal keys
    (checked with the sketches when the method keeps them) and write the resulting forest.
    Memory: one key column partition, the sketches of candidate documents, and one int64 per document."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    work = Path(work_dir)
    files, offsets = signature_layout(work, fingerprint, index)
    meta = read_meta(files[0])
    fp = meta["fingerprint"]
    width = 0
    if "sketch" in meta["columns"]:
        width = pq.read_schema(files[0]).field("sketch").type.byte_width // 2
    threshold = float(fp.get("verify_threshold", 0.0)) if width else 0.0
    tasks = bucket_tasks(_num_keys(files[0]), partitions)
    mine = tasks[rank::world_size]
    uf = UnionFind(int(offsets[-1]))
    candidates = [candidate_buckets(*_task_candidates(files, offsets, k, p, partitions)) for k, p in mine]
    if threshold > 0:
        needed = np.unique(np.concatenate([idx for idx, _ in candidates])) if candidates else np.zeros(0, np.int64)
        lookup = _load_sketches(files, offsets, needed, width)
    edges = candidate_pairs = 0
    for idx, bucket in candidates:
        if threshold > 0:
            u, v = verified_edges(idx, bucket, lookup, threshold)
        else:
            u, v = bucket_edges_from_candidates(idx, bucket)
        candidate_pairs += len(idx) - len(np.unique(bucket))
        edges += len(u)
        uf.union(u, v)
    roots = uf.roots()
    nodes = np.flatnonzero(roots != np.arange(len(roots)))
    table = pa.table({"node": nodes.astype(np.int64), "root": roots[nodes]}, schema=EDGE_SCHEMA)
    with ValidatedParquetWriter(work / EDGE_DIR / shard_name(rank), EDGE_SCHEMA,
                                {"step": "edges", "rank": rank, "world_size": world_size, "tasks": mine,
                                 "partitions": partitions, "documents": int(offsets[-1]), "fingerprint": fp}) as w:
        w.write(table)
    return {"rank": rank, "tasks": len(mine), "candidate_pairs": int(candidate_pairs), "bucket_edges": edges,
            "linked_documents": int(len(nodes))}


def _edge_files(work: Path, n_docs: int, fingerprint: dict, num_keys: int) -> list[Path]:
    folder = work / EDGE_DIR
    files = _shard_files(folder, "edge")
    metas = [read_meta(f, {"documents": n_docs, "fingerprint": fingerprint}) for f in files]
    world, parts = metas[0]["world_size"], metas[0]["partitions"]
    if len(files) != world or {f.name for f in files} != {shard_name(r) for r in range(world)}:
        raise IntermediateError(f"{folder}: expected edge files for ranks 0..{world - 1}, found "
                                f"{[f.name for f in files]}")
    done = sorted(tuple(t) for m in metas for t in m["tasks"])
    if done != bucket_tasks(num_keys, parts):
        raise IntermediateError(f"{folder}: edge files do not cover every bucket task exactly once")
    return files


# --- step 3: clusters and assignments -----------------------------------------------------------------------

def _removed_by(work: Path, files: list[Path]) -> np.ndarray:
    """Rows an earlier method (another work folder over the same shards) removed: they take no part here."""
    out = []
    for f in files:
        prev = work / ASSIGN_DIR / f.name
        out.append(~np.asarray(read_validated(prev, ["kept_id"]).column(0).is_null()))
    return np.concatenate(out)


def cluster_duplicates(work_dir: str | os.PathLike, keep: str = "highest_quality",
                       exclude: Iterable[str | os.PathLike] = (), fingerprint: dict | None = None,
                       index: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Merge the bucket forests into clusters, pick each cluster's kept document, write per-shard assignments.

    `exclude`: work folders of methods that ran before on the same shards (e.g. url before exact); rows they
    removed are left out of these clusters. `index`: prebuilt index folders (as given to the bucket step): a
    cluster with an index document keeps it and removes this run's members.
    """
    work = Path(work_dir)
    files, offsets = signature_layout(work, fingerprint, index)
    own = len(_own_layout(work, fingerprint)[0]) if index else len(files)
    n_own = int(offsets[own])
    fp = read_meta(files[0])["fingerprint"]
    n = int(offsets[-1])
    cols = ["id", "id_hash", "length", "quality"]
    tables = [read_validated(f, cols) for f in files]
    ids = pa.chunked_array([t.column("id") for t in tables], type=pa.string()).combine_chunks()

    hashes, lengths, quality = (
        np.concatenate([t.column(name).to_numpy(zero_copy_only=False) for t in tables]).astype(dtype) if n
        else np.zeros(0, dtype) for name, dtype in (("id_hash", np.uint64), ("length", np.int64),
                                                     ("quality", np.float64)))
    tables = None  # the id column lives on in `ids`; free the rest
    active = np.ones(n, dtype=bool)
    for prev in exclude:
        active[:n_own] &= ~_removed_by(Path(prev), files[:own])
    uf = UnionFind(n)
    for f in _edge_files(work, n, fp, _num_keys(files[0])):
        for batch in iter_validated(f):
            uf.union(batch.column(0).to_numpy(), batch.column(1).to_numpy())
    roots = uf.roots()
    act_idx = np.flatnonzero(active[:n_own])
    rank = np.zeros(n, dtype=np.int64)
    rank[act_idx] = id_ranks(ids.take(pa.array(act_idx)))  # raises on a duplicate id among the active rows
    rank[n_own:] = np.arange(n_own, n)  # index documents (their ids may repeat this run's): never ranked by id
    clusters = choose_kept(roots, rank, lengths, quality, active=active, policy=keep)
    multi = clusters.size > 1
    removed = active & ~clusters.keep
    kept_idx, by_index = clusters.kept, 0
    if n > n_own:
        from filters.dedup.index import override_with_index

        removed, kept_idx, by_index = override_with_index(clusters.root, n_own, removed, clusters.kept)
        removed[n_own:] = False
    # ids by index, null where not applicable (Arrow take with null indices: no Python strings per row)
    cluster_id = ids.take(pa.array(clusters.cluster_min, mask=~multi))
    kept_id = ids.take(pa.array(kept_idx, mask=~removed))
    for shard, f in enumerate(files[:own]):
        lo, hi = int(offsets[shard]), int(offsets[shard + 1])
        table = pa.table({"id_hash": hashes[lo:hi], "cluster_id": cluster_id.slice(lo, hi - lo),
                          "cluster_size": clusters.size[lo:hi].astype(np.int32),
                          "kept_id": kept_id.slice(lo, hi - lo)}, schema=ASSIGN_SCHEMA)
        with ValidatedParquetWriter(work / ASSIGN_DIR / f.name, ASSIGN_SCHEMA,
                                    {"step": "assign", "shard": shard, "fingerprint": fp, "keep": keep}) as w:
            w.write(table)
    stats = {**clusters.stats(), "active": int(active[:n_own].sum()), "keep": keep, "fingerprint": fp,
             "shards": own}
    if n > n_own:
        stats |= {"index_documents": n - n_own, "removed_by_index": by_index,
                  "removed": int(removed[:n_own].sum())}
    atomic_write_json(work / SUMMARY, stats)
    return stats


def cluster_summary(work_dir: str | os.PathLike) -> dict | None:
    return read_json(Path(work_dir) / SUMMARY)


# --- step 4: apply ------------------------------------------------------------------------------------------

class AssignmentReader:
    """Row-aligned assignments of one shard; `next(doc_id)` checks the row belongs to that document."""

    def __init__(self, work_dir: str | os.PathLike, shard: int):
        self.path = Path(work_dir) / ASSIGN_DIR / shard_name(shard)
        self.rows = read_meta(self.path)["rows"]
        self._batches = iter_validated(self.path)
        self._buf: list[tuple] | None = None  # (id_hash, cluster_id, cluster_size, kept_id) rows
        self._pos = 0
        self.row = 0

    def _fill(self) -> None:
        batch = next(self._batches, None)
        if batch is None:
            raise IntermediateError(f"{self.path}: has {self.rows} rows but the shard has more documents; the "
                                    "input changed since the signature step; rerun the dedup steps")
        self._buf = list(zip(*(batch.column(i).to_pylist() for i in range(4))))
        self._pos = 0

    def next(self, doc_id: str) -> tuple[str | None, int, str | None]:
        """(cluster_id or None for a singleton, cluster_size, kept_id or None when the document is kept)."""
        if self._buf is None or self._pos >= len(self._buf):
            self._fill()
        h, cid, size, kept = self._buf[self._pos]
        if h != id_hash(doc_id):
            raise IntermediateError(f"{self.path}: row {self.row} belongs to another document than {doc_id!r}; the "
                                    "input order changed since the signature step; rerun the dedup steps")
        self._pos += 1
        self.row += 1
        return cid, size, kept

    def finish(self) -> None:
        if self.row != self.rows:
            raise IntermediateError(f"{self.path}: {self.rows} rows but the shard had {self.row} documents; the "
                                    "input changed since the signature step; rerun the dedup steps")
