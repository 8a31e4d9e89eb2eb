"""LANGIT neighbours (sPhinX): per language, the N most similar rows of the same language's pool by sentence-embedding
cosine (`nearest`: a generic blocked top-n search over L2-normalised vectors with per-query exclusions), never the
row itself, its own source or the same English instruction; `messages` renders the neighbours as earlier turns."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from generators.sphinx_config import NShotConfig


def nearest(query: np.ndarray, pool: np.ndarray, exclude: Sequence[set[int]], n: int, block: int = 1024
            ) -> list[list[int]]:
    """For each query row, the indices of its n most similar pool rows (cosine of L2-normalised vectors; ties by
    index), never an excluded one. Blocks of `block` query rows: memory is block x pool, not query x pool."""
    if n == 0 or not len(pool):
        return [[] for _ in range(len(query))]
    out = []
    for b in range(0, len(query), block):
        sims = query[b:b + block] @ pool.T
        for i, row in enumerate(sims, b):
            k = min(len(row), n + len(exclude[i]))  # enough candidates to survive the exclusions
            cand = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            # exact ties at the cut: take every candidate with the k-th score, then order by (score, index)
            cut = row[cand].min()
            cand = np.flatnonzero(row >= cut)
            order = cand[np.lexsort((cand, -row[cand]))]
            out.append([int(j) for j in order if int(j) not in exclude[i]][:n])
    return out


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def add_neighbours(rows: list[dict], cfg: NShotConfig, encoder) -> None:
    """Per language: `nshot_ids` (and `messages`) from the same language's pool, never the row itself, its own
    source, or a source with the same English instruction."""
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r)
    for group in by_lang.values():
        pool = [r for r in group if cfg.pool == "all" or r["status"] == "pass"]
        key = "instruction_en" if cfg.embed == "source" else "instruction"
        if pool and cfg.n:
            vecs = encoder([r[key] or "" for r in group])
            index = {r["id"]: i for i, r in enumerate(group)}
            pvecs = vecs[[index[p["id"]] for p in pool]]
            same: dict[tuple[str, str], set[int]] = {}
            for j, p in enumerate(pool):
                for k in (("id", p["id"]), ("src", p["src_id"]), ("en", _norm(p["instruction_en"]))):
                    same.setdefault(k, set()).add(j)
            excl = [same.get(("id", r["id"]), set()) | same.get(("src", r["src_id"]), set())
                    | same.get(("en", _norm(r["instruction_en"])), set()) for r in group]
            for r, nb in zip(group, nearest(vecs, pvecs, excl, cfg.n)):
                r["nshot_ids"] = [pool[j]["id"] for j in nb]
        if cfg.render_messages:
            by_id = {r["id"]: r for r in group}
            for r in group:
                if r["instruction"] is None or r["response"] is None:
                    continue
                turns = [by_id[i] for i in r["nshot_ids"]] + [r]
                r["messages"] = [m for t in turns for m in ({"role": "user", "content": t["instruction"]},
                                                             {"role": "assistant", "content": t["response"]})]



def load_encoder(cfg: NShotConfig):
    """`nshot.model_path` (a local mean-pooling sentence-embedding folder), else all-MiniLM-L6-v2 (`load_minilm`)."""
    from filters.embeddings import MiniLM, load_minilm

    return MiniLM(cfg.model_path) if cfg.model_path else load_minilm()
