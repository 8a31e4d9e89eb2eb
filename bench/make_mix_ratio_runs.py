"""Write corpora/sample_data/mix_ratio_runs.csv: synthetic small runs from known parameters (corpora.scaling_law.
PAPER_LIKE, shaped like He et al.'s five families; NOT their numbers), 4 model sizes x 4 token budgets x 4 seeded
mixtures, 0.2% log-normal loss noise. `python bench/make_mix_ratio_runs.py` rewrites it byte-identically."""
from __future__ import annotations

import csv
from pathlib import Path

from corpora.scaling_law import PAPER_LIKE, sample_mixtures, simulate_runs

NS = (20e6, 85e6, 300e6, 1.2e9)
DS = (1e9, 5e9, 25e9, 100e9)
OUT = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "mix_ratio_runs.csv"


def main() -> None:
    rows = simulate_runs(PAPER_LIKE, NS, DS, sample_mixtures(list(PAPER_LIKE), 4), noise=0.002, seed=0)
    with OUT.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["run", "family", "ratio", "params", "tokens", "loss"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "params": int(r["params"]), "tokens": int(r["tokens"]), "loss": f"{r['loss']:.6f}"})
    print(f"{OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
