"""Cost of the Ensemble-Instruct novelty check per candidate as the pool grows: the prefiltered index
(`filters.rouge.NoveltyPool`, method="index") vs scoring the whole pool (method="brute", the reference's way).

The pool: synthetic instructions (an imperative verb + 5-20 words drawn Zipf-like from a 3,000-word vocabulary, with
the English function words mixed in at their usual rate) and near copies of earlier items (1-4 words changed), so
the 0.7 threshold is crossed often. Both methods see the same candidates; the table also checks that they decide
alike. Times are wall-clock on this machine (one process).

  python bench/ensemble_novelty.py                      # pools up to 50k, brute force up to 10k (about a minute)
  python bench/ensemble_novelty.py --sizes 1000 5000 --brute-max 5000 --candidates 100
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.rouge import COMMON_WORDS, NoveltyPool, tokenize

VERBS = ["write", "describe", "list", "explain", "summarize", "give", "suggest", "compare", "classify", "name",
         "generate", "create", "find", "rewrite", "translate", "identify", "tell", "convert", "evaluate",
         "plan"]


def make_texts(n: int, rng: random.Random) -> list[str]:
    vocab = [f"w{i}" for i in range(3000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.3:
            w = rng.choice(out).split()
            for _ in range(rng.randint(1, 4)):
                w[rng.randrange(len(w))] = rng.choices(vocab, weights)[0]
            out.append(" ".join(w))
            continue
        words = [rng.choice(VERBS)]
        for _ in range(rng.randint(5, 20)):
            words.append(rng.choice(COMMON_WORDS) if rng.random() < 0.4 else rng.choices(vocab, weights)[0])
        out.append(" ".join(words))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    ap.add_argument("--brute-max", type=int, default=10000, help="largest pool the brute force is timed on")
    ap.add_argument("--candidates", type=int, default=50, help="candidates checked per pool size")
    ap.add_argument("--threshold", type=float, default=0.7)
    args = ap.parse_args()
    rng = random.Random(0)
    texts = make_texts(max(args.sizes) + args.candidates, rng)
    tokens = [tokenize(t) for t in texts]
    pool_toks, cand_toks = tokens[:max(args.sizes)], tokens[max(args.sizes):]
    print(f"{'pool':>8} {'index us/cand':>14} {'exact/cand':>11} {'brute us/cand':>14} {'speedup':>8} "
          f"{'rejected':>9} {'same decisions':>15}")
    for size in sorted(args.sizes):
        pools = {m: NoveltyPool(args.threshold, method=m) for m in ("index", "brute")}
        for i, t in enumerate(pool_toks[:size]):
            pools["index"].add(str(i), tokens=t)
            if size <= args.brute_max:
                pools["brute"].add(str(i), tokens=t)
        res = {}
        for m, pool in pools.items():
            if m == "brute" and size > args.brute_max:
                continue
            t0 = time.perf_counter()
            decisions = [pool.check(tokens=c)[0] for c in cand_toks]
            res[m] = ((time.perf_counter() - t0) / len(cand_toks) * 1e6, pool.scored / len(cand_toks), decisions)
        idx = res["index"]
        brute = res.get("brute")
        print(f"{size:>8,} {idx[0]:>14,.0f} {idx[1]:>11,.1f} "
              f"{(f'{brute[0]:,.0f}' if brute else '-'):>14} {(f'{brute[0] / idx[0]:.0f}x' if brute else '-'):>8} "
              f"{sum(not d for d in idx[2]):>9} {(str(brute[2] == idx[2]) if brute else '-'):>15}")


if __name__ == "__main__":
    main()
