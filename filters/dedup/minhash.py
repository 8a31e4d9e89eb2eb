"""MinHash + LSH near-duplicate detection, vectorised with numpy; reusable over plain lists of texts.

Defaults follow FineWeb/datatrove: word 5-gram shingles of normalised text (`textnorm`), 64-bit shingle hashes,
14 bands x 8 rows (112 permutations; a pair with Jaccard 0.8 collides in some band with probability 0.92, at 0.5
with 0.05). A permutation is h_j(x) = a_j * x mod 2^64 on fmix64-mixed shingle hashes (multiply-shift family,
a_j odd, drawn from a recorded seed): on mixed inputs it estimates Jaccard without bias (see the tests) and runs as
one wide numpy multiply per block instead of mod-Mersenne arithmetic. A band's 8 values fold into one 64-bit key.

Plain-function API (used by the generators for dedup of synthetic outputs and novelty filters):
  minhash_signatures(texts) -> Signatures          band_keys(signatures) -> (n, bands) uint64
  near_duplicate_clusters(texts, ids=...)          dedup_table(table) -> table + dup_* columns
  MinHashLSHIndex: add(texts, ids) / query(texts) / novel(texts) for incremental use.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from filters.dedup import textnorm
from filters.dedup.clusters import Clusters, choose_kept, clusters_from_keys, id_ranks
from filters.dedup.textnorm import WordHashes, fmix64, ngram_hashes, text_chunks, word_hashes

_EMPTY = np.iinfo(np.uint64).max
_BAND_BASE = np.uint64(0xA0761D6478BD642F)
_BAND_SEED = np.uint64(0xE7037ED1A0B428DB)
_CHUNK = 16384  # shingles per permutation block: 112 x 16k uint64 stays in cache


@dataclass(frozen=True)
class MinHashConfig:
    ngram_size: int = 5
    num_bands: int = 14
    rows_per_band: int = 8
    seed: int = 1
    short_docs: str = "whole"  # texts with < ngram_size words: one shingle of all words ("skip": no signature)
    # false-positive check after LSH: a candidate pair is linked only if its estimated Jaccard (16-bit sketch of
    # the signature) reaches this; 0 links every band collision, as FineWeb/datatrove do
    verify_threshold: float = 0.7

    def __post_init__(self):
        for name in ("ngram_size", "num_bands", "rows_per_band"):
            if getattr(self, name) < 1:
                raise ValueError(f"minhash {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.verify_threshold <= 1.0:
            raise ValueError(f"minhash verify_threshold must be in [0, 1], got {self.verify_threshold}")
        if self.short_docs not in ("whole", "skip"):
            raise ValueError(f"minhash short_docs must be 'whole' or 'skip', got {self.short_docs!r}")

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    @property
    def threshold(self) -> float:
        """Jaccard at which the LSH collision probability rises fastest: (1/b)^(1/r)."""
        return (1.0 / self.num_bands) ** (1.0 / self.rows_per_band)

    def collision_probability(self, jaccard: float) -> float:
        return 1.0 - (1.0 - jaccard ** self.rows_per_band) ** self.num_bands

    def fingerprint(self) -> dict:
        """Everything that changes signatures: intermediates made under another fingerprint must not mix."""
        return {**asdict(self), "hash_version": textnorm.HASH_VERSION}


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> np.ndarray:
    """Multipliers a_j of the num_perm hash functions as a (num_perm, 1) column; odd, so each is a bijection."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
    a.setflags(write=False)
    return a.reshape(-1, 1)


@dataclass
class Signatures:
    """`values[i]` is text i's signature (num_perm uint64); texts without shingles have `valid[i] == False`."""

    values: np.ndarray  # (n, num_perm) uint64
    valid: np.ndarray  # (n,) bool


def signatures_from_shingles(shingles: WordHashes, config: MinHashConfig = MinHashConfig()) -> Signatures:
    """MinHash signatures from shingle hashes (layout of `textnorm.ngram_hashes`)."""
    a = permutations(config.num_perm, config.seed)
    counts = shingles.counts()
    n_docs = len(counts)
    sig = np.full((config.num_perm, n_docs), _EMPTY, dtype=np.uint64)
    x = fmix64(shingles.hashes)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    block = np.empty((config.num_perm, _CHUNK), dtype=np.uint64)
    for s in range(0, len(x), _CHUNK):
        xs = x[s:s + _CHUNK]
        ds = doc_of[s:s + _CHUNK]
        seg = np.flatnonzero(np.r_[True, ds[1:] != ds[:-1]])  # each doc's run inside this block
        t = block[:, :len(xs)]
        with np.errstate(over="ignore"):
            np.multiply(a, xs, out=t)
        mins = np.minimum.reduceat(t, seg, axis=1)
        docs = ds[seg]
        # a doc split across two blocks keeps the smaller value of each half
        sig[:, docs] = np.minimum(sig[:, docs], mins)
    return Signatures(values=sig.T, valid=counts > 0)


def minhash_signatures(texts: Sequence[str], config: MinHashConfig = MinHashConfig(),
                       max_chars: int = 1 << 21) -> Signatures:
    """MinHash signatures of `texts` (normalised word n-gram shingles), computed in batches of about `max_chars`
    characters so temporary arrays stay small whatever the input size."""
    values = np.empty((len(texts), config.num_perm), dtype=np.uint64)
    valid = np.zeros(len(texts), dtype=bool)
    for a, b in text_chunks(texts, max_chars):
        shingles = ngram_hashes(word_hashes(texts[a:b]), config.ngram_size, short=config.short_docs)
        sig = signatures_from_shingles(shingles, config)
        values[a:b], valid[a:b] = sig.values, sig.valid
    return Signatures(values, valid)


def band_keys(signatures: Signatures | np.ndarray, config: MinHashConfig = MinHashConfig()) -> np.ndarray:
    """One 64-bit bucket key per band: (n, num_bands) uint64."""
    values = signatures.values if isinstance(signatures, Signatures) else np.asarray(signatures)
    if values.shape[1] != config.num_perm:
        raise ValueError(f"signatures have {values.shape[1]} values, config expects {config.num_perm}")
    r = config.rows_per_band
    keys = np.empty((values.shape[0], config.num_bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(config.num_bands):
            acc = np.full(values.shape[0], _BAND_SEED, dtype=np.uint64)
            for j in range(r):
                acc = acc * _BAND_BASE + values[:, band * r + j]
            keys[:, band] = fmix64(acc)
    return keys


def sketches(signatures: Signatures | np.ndarray) -> np.ndarray:
    """The low 16 bits of every signature value: (n, num_perm) uint16, 1/4 of the size, and still an unbiased
    Jaccard estimate up to a 2^-16 chance collision per position. Used to check LSH candidates."""
    values = signatures.values if isinstance(signatures, Signatures) else np.asarray(signatures)
    return values.astype(np.uint16)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))


def near_duplicate_clusters(texts: Sequence[str], ids: Sequence[str] | None = None,
                            quality: Sequence[float] | None = None, config: MinHashConfig = MinHashConfig(),
                            keep: str = "highest_quality") -> Clusters:
    """Near-duplicate clusters of `texts` (in memory) and the member each keeps (see `clusters.choose_kept`).

    Without `ids`, the text's position is its id (so ties keep the earliest text).
    """
    n = len(texts)
    sig = minhash_signatures(texts, config)
    keys = band_keys(sig, config)
    roots = clusters_from_keys((keys[:, b] for b in range(config.num_bands)), sig.valid, n,
                               sketches(sig), config.verify_threshold)
    rank = np.arange(n, dtype=np.int64) if ids is None else id_ranks(ids)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    q = None if quality is None else np.asarray(quality, dtype=np.float64)
    return choose_kept(roots, rank, lengths, q, policy=keep)


def dedup_table(table, text_column: str = "text", id_column: str = "id", quality_column: str = "quality_score",
                config: MinHashConfig = MinHashConfig(), keep: str = "highest_quality"):
    """An Arrow table with `dup_cluster_id`, `dup_cluster_size` and `dup_kept_id` (null when the row is kept)
    added; filter on `dup_kept_id IS NULL` to deduplicate."""
    import pyarrow as pa

    texts = table.column(text_column).to_pylist()
    ids = table.column(id_column) if id_column in table.column_names else None
    q = None
    if quality_column in table.column_names:
        q = np.asarray(table.column(quality_column).to_numpy(zero_copy_only=False), dtype=np.float64)
    res = near_duplicate_clusters(texts, ids=ids, quality=q, config=config, keep=keep)
    names = np.asarray(ids.to_pylist() if ids is not None else [str(i) for i in range(len(texts))], dtype=object)
    kept_id = np.where(res.keep, None, names[res.kept])
    return (table.append_column("dup_cluster_id", pa.array(names[res.cluster_min].tolist(), pa.string()))
            .append_column("dup_cluster_size", pa.array(res.size.astype(np.int32)))
            .append_column("dup_kept_id", pa.array(kept_id.tolist(), pa.string())))


class MinHashLSHIndex:
    """An incremental LSH index: add texts (or signatures) over time, ask which indexed items a new text
    near-duplicates. Buckets are sorted runs merged as they grow (no Python dict per key), and signatures are
    kept so candidates can be confirmed with the estimated Jaccard."""

    def __init__(self, config: MinHashConfig = MinHashConfig(), max_runs: int = 8):
        self.config = config
        self.max_runs = max_runs
        self.ids: list = []
        self._sigs: list[np.ndarray] = []
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (keys (m, bands) sorted per band, index)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, texts: Sequence[str], ids: Sequence | None = None) -> None:
        self.add_signatures(minhash_signatures(texts, self.config), ids)

    def add_signatures(self, sig: Signatures, ids: Sequence | None = None) -> None:
        n = len(sig.valid)
        start = len(self.ids)
        self.ids.extend(range(start, start + n) if ids is None else ids)
        if len(self.ids) != start + n:
            raise ValueError(f"got {n} signatures but {len(self.ids) - start} ids")
        self._sigs.append(sig.values)
        idx = np.arange(start, start + n, dtype=np.int64)[sig.valid]
        keys = band_keys(sig, self.config)[sig.valid]
        self._runs.append(self._sorted_run(keys, idx))
        if len(self._runs) > self.max_runs:
            keys = np.concatenate([k for k, _ in self._runs])
            index = np.concatenate([i for _, i in self._runs])
            self._runs = [self._sorted_run(keys, index)]

    @staticmethod
    def _sorted_run(keys: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # per band: keys sorted, with the matching item index
        order = np.argsort(keys, axis=0, kind="stable")
        return np.take_along_axis(keys, order, axis=0), index[order]

    def _signature_matrix(self) -> np.ndarray:
        if len(self._sigs) > 1:
            self._sigs = [np.concatenate(self._sigs)]
        return self._sigs[0] if self._sigs else np.zeros((0, self.config.num_perm), np.uint64)

    def query_signatures(self, sig: Signatures, min_jaccard: float | None = None) -> list[list]:
        """For each query: ids of indexed items sharing a band and with estimated Jaccard >= `min_jaccard`
        (default: the config's verify_threshold; 0 keeps every band collision), in insertion order."""
        if min_jaccard is None:
            min_jaccard = self.config.verify_threshold
        keys = band_keys(sig, self.config)
        hits: list[set[int]] = [set() for _ in range(len(sig.valid))]
        for run_keys, run_idx in self._runs:
            for band in range(self.config.num_bands):
                col = run_keys[:, band]
                lo = np.searchsorted(col, keys[:, band], side="left")
                hi = np.searchsorted(col, keys[:, band], side="right")
                for q in np.flatnonzero((hi > lo) & sig.valid):
                    hits[q].update(run_idx[lo[q]:hi[q], band].tolist())
        out: list[list] = []
        stored = self._signature_matrix() if min_jaccard > 0 else None
        for q, found in enumerate(hits):
            items = sorted(found)
            if stored is not None and items:
                est = (stored[items] == sig.values[q]).mean(axis=1)
                items = [i for i, e in zip(items, est) if e >= min_jaccard]
            out.append([self.ids[i] for i in items])
        return out

    def query(self, texts: Sequence[str], min_jaccard: float | None = None) -> list[list]:
        return self.query_signatures(minhash_signatures(texts, self.config), min_jaccard)

    def novel(self, texts: Sequence[str], ids: Sequence | None = None, min_jaccard: float | None = None,
              add: bool = True) -> np.ndarray:
        """True where a text near-duplicates nothing indexed nor any earlier text of this call; with `add`,
        the novel texts are then indexed under their `ids` (a novelty filter for generated data)."""
        sig = minhash_signatures(texts, self.config)
        prior = self.query_signatures(sig, min_jaccard)
        keys = band_keys(sig, self.config)
        threshold = self.config.verify_threshold if min_jaccard is None else min_jaccard
        roots = clusters_from_keys((keys[:, b] for b in range(self.config.num_bands)), sig.valid, len(texts),
                                   sketches(sig), threshold)
        within_dup = roots != np.arange(len(texts))
        is_novel = np.array([not p for p in prior]) & ~within_dup
        if add and is_novel.any():
            sel = np.flatnonzero(is_novel)
            new_ids = None if ids is None else [ids[i] for i in sel]
            self.add_signatures(Signatures(sig.values[sel], sig.valid[sel]), new_ids)
        return is_novel
