"""Duplicate clusters: equal-key buckets -> edges -> connected components -> one kept document per cluster.

Everything here is vectorised numpy over integer document indexes, so the same code serves the in-memory API
(lists of texts, Arrow tables) and the out-of-core pipeline (`outofcore.py`), which streams edge files through
`UnionFind` batch by batch and never holds all pairs in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

KeepPolicy = Literal["highest_quality", "longest", "smallest_id"]
KEEP_POLICIES: tuple[str, ...] = ("highest_quality", "longest", "smallest_id")


class UnionFind:
    """Union-find over 0..n-1 with vectorised batch unions. A root is always the smallest index of its
    component (a union hooks the larger root under the smaller), so labels do not depend on edge order."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: np.ndarray) -> np.ndarray:
        parent = self.parent
        r = parent[x]
        while True:
            rr = parent[r]
            if np.array_equal(rr, r):
                break
            r = rr
        parent[x] = r  # path compression for the queried nodes
        return r

    def union(self, u: np.ndarray, v: np.ndarray) -> None:
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        while u.size:
            ru, rv = self.find(u), self.find(v)
            differ = ru != rv
            if not differ.any():
                return
            ru, rv, u, v = ru[differ], rv[differ], u[differ], v[differ]
            lo, hi = np.minimum(ru, rv), np.maximum(ru, rv)
            # several edges may hook the same root in one pass; one write wins and the rest retry next pass
            self.parent[hi] = lo

    def roots(self) -> np.ndarray:
        """Root of every node (full path compression by pointer jumping)."""
        p = self.parent
        while True:
            pp = p[p]
            if np.array_equal(pp, p):
                break
            p = pp
        self.parent = p
        return p


def _sorted_buckets(keys: np.ndarray, index: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index sorted by (key, index), bucket number of each position, bucket sizes per position)."""
    keys = np.asarray(keys)
    if index is None:
        index = np.arange(len(keys), dtype=np.int64)
    order = np.lexsort((index, keys))
    k, idx = keys[order], np.asarray(index, dtype=np.int64)[order]
    start = np.ones(len(k), dtype=bool)
    start[1:] = k[1:] != k[:-1]
    bucket = np.cumsum(start) - 1
    sizes = np.bincount(bucket)[bucket] if len(bucket) else np.zeros(0, np.int64)
    return idx, bucket, sizes


def bucket_edges(keys: np.ndarray, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Documents with equal keys: a star of edges (member -> smallest index of its bucket).

    `keys` (uint64) and `index` (int64, default 0..n-1) are parallel arrays; the result is (u, v) with u > v.
    """
    idx, bucket, sizes = _sorted_buckets(keys, index)
    if not len(idx):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = np.ones(len(idx), dtype=bool)
    first[1:] = bucket[1:] != bucket[:-1]
    leader = np.maximum.accumulate(np.where(first, np.arange(len(idx)), 0))
    members = ~first
    return idx[members], idx[leader[members]]


def bucket_edges_from_candidates(index: np.ndarray, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges (member -> first member) of the buckets from `candidate_buckets`."""
    if not len(index):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = np.ones(len(index), dtype=bool)
    first[1:] = bucket[1:] != bucket[:-1]
    leader = np.maximum.accumulate(np.where(first, np.arange(len(index)), 0))
    return index[~first], index[leader[~first]]


def candidate_buckets(keys: np.ndarray, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Members of buckets with at least two documents: (index, bucket number), sorted by bucket then index."""
    idx, bucket, sizes = _sorted_buckets(keys, index)
    multi = sizes > 1
    return idx[multi], bucket[multi]


def verified_edges(index: np.ndarray, bucket: np.ndarray, sketches, threshold: float,
                   max_rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Edges of candidate buckets whose members really look alike (false-positive check after LSH).

    Each bucket's first member leads; a member joins it when its sketch matches the leader's on at least
    `threshold` of the positions (estimated Jaccard). Members that fail form the bucket's next round with their
    own first member as leader, up to `max_rounds` leaders per bucket. `sketches(idx) -> (len(idx), P)` array.
    """
    us, vs = [], []
    pos = np.arange(len(index))
    for _ in range(max_rounds):
        if len(pos) < 2:
            break
        b = bucket[pos]
        first = np.ones(len(pos), dtype=bool)
        first[1:] = b[1:] != b[:-1]
        leader = pos[np.maximum.accumulate(np.where(first, np.arange(len(pos)), 0))]
        members = pos[~first]
        if not len(members):
            break
        u, v = index[members], index[leader[~first]]
        est = (sketches(u) == sketches(v)).mean(axis=1)
        ok = est >= threshold
        us.append(u[ok])
        vs.append(v[ok])
        pos = members[~ok]
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(us), np.concatenate(vs)


@dataclass
class Clusters:
    """Per document: `root` (smallest index of its cluster), `size` (active members of its cluster), `kept`
    (index of the member the keep policy keeps) and `keep` (this document is that member). Inactive documents
    (already removed upstream) are their own cluster of size 0 and are never chosen."""

    root: np.ndarray
    size: np.ndarray
    kept: np.ndarray
    keep: np.ndarray
    cluster_min: np.ndarray  # index of the member with the smallest id: names the cluster

    @property
    def removed(self) -> np.ndarray:
        return ~self.keep

    def stats(self) -> dict[str, int]:
        multi = self.size > 1
        roots = np.unique(self.root[multi])
        return {
            "documents": int(len(self.root)),
            "in_clusters": int(multi.sum()),
            "clusters": int(len(roots)),
            "removed": int((~self.keep & (self.size > 0)).sum()),
            "largest_cluster": int(self.size.max()) if len(self.size) else 0,
        }


def id_ranks(ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """Rank of each id in sorted order. Duplicate ids (two input files reusing ids) are ranked by input order,
    which is itself deterministic (inputs are sorted), and reported with a warning: the kept copy's id in
    `rejected/` is then ambiguous, never the choice itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), type=pa.string())
    order = pc.sort_indices(arr).to_numpy()
    sorted_ids = pc.take(arr, pa.array(order))
    if len(order) > 1:
        eq = pc.equal(sorted_ids.slice(1), sorted_ids.slice(0, len(order) - 1))
        dup = np.flatnonzero(np.asarray(pc.fill_null(eq, False)))
        if dup.size:
            import warnings

            i = int(dup[0])
            warnings.warn(
                f"{dup.size} duplicate document id(s), e.g. {sorted_ids[i].as_py()!r} (rows {int(order[i])} and "
                f"{int(order[i + 1])}): ties are broken by input order", stacklevel=2)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order), dtype=np.int64)
    return ranks


def choose_kept(roots: np.ndarray, id_rank: np.ndarray, lengths: np.ndarray | None = None,
                quality: np.ndarray | None = None, active: np.ndarray | None = None,
                policy: str = "highest_quality") -> Clusters:
    """Cluster sizes, names and the kept member of every cluster, deterministically.

    `highest_quality`: highest `quality` (missing/NaN counts as lowest), then longest, then smallest id;
    `longest`: longest, then smallest id; `smallest_id`: smallest id.
    """
    if policy not in KEEP_POLICIES:
        raise ValueError(f"unknown keep policy {policy!r}; choose one of {', '.join(KEEP_POLICIES)}")
    n = len(roots)
    roots = np.asarray(roots, dtype=np.int64)
    active = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    # inactive documents become singletons so they neither count nor win
    roots = np.where(active, roots, np.arange(n, dtype=np.int64))
    counts = np.bincount(roots[active], minlength=n)
    size = np.where(active, counts[roots], 0)
    kept = np.arange(n, dtype=np.int64)
    cluster_min = np.arange(n, dtype=np.int64)
    multi = np.flatnonzero(size > 1)
    if multi.size:
        r = roots[multi]
        rank = id_rank[multi]
        # the cluster's name: its member with the smallest id
        cluster_min[multi] = _first_of_group(multi, r, np.lexsort((rank, r)))
        # keep policy: sort within each cluster by the policy's keys, take the first
        keys: list[np.ndarray] = [rank]
        if policy in ("highest_quality", "longest"):
            ln = np.zeros(n) if lengths is None else np.asarray(lengths, dtype=np.float64)
            keys.append(-ln[multi])
        if policy == "highest_quality":
            q = np.full(n, -np.inf) if quality is None else np.asarray(quality, dtype=np.float64)
            qm = q[multi]
            keys.append(-np.where(np.isnan(qm), -np.inf, qm))
        keys.append(r)
        kept[multi] = _first_of_group(multi, r, np.lexsort(tuple(keys)))
    keep = (kept == np.arange(n)) & active
    return Clusters(root=roots, size=size, kept=kept, keep=keep, cluster_min=cluster_min)


def _first_of_group(members: np.ndarray, groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each member (in input order): the first member of its group under `order` (which sorts by group)."""
    g = groups[order]
    start = np.ones(len(g), dtype=bool)
    start[1:] = g[1:] != g[:-1]
    first_pos = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    out = np.empty(len(members), dtype=np.int64)
    out[order] = members[order][first_pos]
    return out


def clusters_from_keys(key_columns: Iterable[np.ndarray], valid: np.ndarray | None, n: int,
                       sketches: np.ndarray | None = None, threshold: float = 0.0) -> np.ndarray:
    """Roots of the components linking documents that share any key column value (in memory); with `sketches`
    and a `threshold`, each candidate link is checked first (`verified_edges`)."""
    uf = UnionFind(n)
    index = np.arange(n, dtype=np.int64)
    for keys in key_columns:
        sel = index if valid is None else index[valid]
        if sketches is not None and threshold > 0:
            idx, bucket = candidate_buckets(keys[sel], sel)
            u, v = verified_edges(idx, bucket, lambda i: sketches[i], threshold)
        else:
            u, v = bucket_edges(keys[sel], sel)
        uf.union(u, v)
    return uf.roots()
