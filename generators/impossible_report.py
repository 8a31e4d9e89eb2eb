"""The stats of Impossible Distillation's pair round (`stats["pairs"]` of its report): pairs in / out, the filter
funnel (per step: pairs in, out, seconds, pairs per second), ROUGE-L and length-ratio histograms, and the kept
pairs' diversity (distinct-1 / -2, self-BLEU)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from filters.pairs import distinct_n, self_bleu


def _hist(values: np.ndarray, bins: Sequence[float]) -> dict[str, Any]:
    counts, edges = np.histogram(values[~np.isnan(values)], bins=bins)
    return {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()}


def pair_stats(all_scores: Sequence, rows: Sequence[dict], critic_model: str) -> dict[str, Any]:
    """`all_scores`: `filter_pairs`' scores per context, in run order; `rows`: the kept pairs."""
    seconds: dict[str, float] = {}
    entered: dict[str, int] = {}
    for s in all_scores:
        for step, sec in s.seconds.items():
            seconds[step] = seconds.get(step, 0.0) + sec
            entered[step] = entered.get(step, 0) + s.entered[step]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(s, name) for s in all_scores]) if all_scores else np.zeros(0)

    steps = list(entered)
    stats = {
        "in": sum(len(s.I) for s in all_scores), "out": len(rows), "critic": critic_model,
        "funnel": [{"step": st, "in": entered[st], "out": entered[steps[i + 1]] if i + 1 < len(steps) else len(rows),
                    "seconds": round(seconds[st], 4), "pairs_per_s": round(entered[st] / seconds[st], 1)
                    if seconds[st] else None} for i, st in enumerate(steps)],
        "rougeL_hist": _hist(cat("rougeL"), np.linspace(0, 1, 11)),
        "len_ratio_hist": _hist(cat("len_ratio"), [0, .25, .5, .75, .8, 1, 1.25, 1.5, 2, 3, np.inf]),
        "kept": {"distinct_1": distinct_n([r["y_new"] for r in rows], 1),
                 "distinct_2": distinct_n([r["y_new"] for r in rows], 2),
                 "self_bleu": self_bleu([r["y_new"] for r in rows])},
        }
    stats["rev_note"] = all_scores[0].rev_note if all_scores else None
    return stats
