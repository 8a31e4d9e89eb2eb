"""Pairs/s of each Impossible Distillation pair filter (`filters.pairs.filter_pairs`) on synthetic candidate sets.

The pair stage is quadratic per context (n candidates: n(n-1)/2 pairs). Candidates are random news-like sentences
around a few templates (so some pairs pass the cheap tests); the critic is MiniLM (`--critic minilm`, installed),
a tiny random NLI model built on the fly (`--critic tiny-nli`: the real batched NLI code path, not a real model's
speed), or a constant (`--critic none`: the cheap filters alone). Every filter is timed on all the pairs it sees.

    python bench/impossible_pairs.py                       # 3 contexts x 100 candidates, MiniLM
    python bench/impossible_pairs.py --contexts 10 --critic none
    python bench/impossible_pairs.py --order reference     # the reference's order (dedup before numbers, ROUGE-L)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.pairs import ORDERS, GraphDedupConfig, PairFilterConfig, filter_pairs  # noqa: E402

SUBJECTS = ["The city council", "Officials", "The company", "Police", "The minister", "Local residents"]
VERBS = ["approved", "rejected", "announced", "discussed", "delayed", "criticised"]
OBJECTS = ["a new budget", "the plan", "a 200 million dollar project", "the proposal", "new rules", "the deal"]
TAILS = ["on Monday", "after a long debate", "in a statement", "late on Friday", "this week", "for 3 years"]


def candidates(n: int, rng: np.random.Generator) -> list[str]:
    out = []
    for _ in range(n):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        if rng.random() < 0.6:
            words.append(rng.choice(TAILS))
        out.append(" ".join(words) + ".")
    return out


class ConstantCritic:
    model = "constant"

    def entailment(self, premises, hypotheses):
        return np.full(len(premises), 0.9)

    def entails(self, premises, hypotheses):
        return np.zeros(len(premises), dtype=bool)


def tiny_nli(texts: list[str]):
    import re

    import torch
    import transformers

    from filters.nli import NLICritic

    path = Path(tempfile.mkdtemp()) / "tiny-nli"
    path.mkdir()
    words = sorted(set(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", " ".join(texts).lower())))
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(words) + 5, hidden_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=128, num_labels=3,
                                  id2label={0: "contradiction", 1: "entailment", 2: "neutral"})
    transformers.BertForSequenceClassification(cfg).save_pretrained(path)
    transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    return NLICritic(path, batch_size=256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--critic", choices=["minilm", "tiny-nli", "none"], default="minilm")
    ap.add_argument("--mode", choices=["paraphrase", "summary"], default="paraphrase")
    ap.add_argument("--order", choices=sorted(ORDERS), default="cheap_first", help="the tests' order")
    args = ap.parse_args()
    STEPS = ORDERS[args.order]
    rng = np.random.default_rng(0)
    sets = [candidates(args.candidates, rng) for _ in range(args.contexts)]
    if args.critic == "minilm":
        from filters.nli import EmbeddingCritic

        critic = EmbeddingCritic()
    elif args.critic == "tiny-nli":
        critic = tiny_nli(sum(sets, []))
    else:
        critic = ConstantCritic()
    cfg = PairFilterConfig() if args.mode == "paraphrase" else PairFilterConfig(
        min_len_ratio=None, max_len_ratio=0.75, nli_rev=None)
    cfg = cfg.model_copy(update={"order": args.order})
    seconds = dict.fromkeys(STEPS, 0.0)
    entered = dict.fromkeys(STEPS, 0)
    kept, t0 = 0, time.perf_counter()
    for texts in sets:
        s = filter_pairs(texts, cfg, critic, GraphDedupConfig(), orient_longer_first=args.mode == "summary")
        for k in STEPS:
            seconds[k] += s.seconds[k]
            entered[k] += s.entered[k]
        kept += int(s.passed.sum())
    wall = time.perf_counter() - t0
    total = entered["length_ratio"]
    print(f"{args.contexts} contexts x {args.candidates} candidates = {total:,} pairs, critic {critic.model}, "
          f"mode {args.mode}, order {args.order}")
    print(f"{'filter':<14}{'pairs in':>10}{'pairs out':>11}{'seconds':>10}{'pairs/s':>14}")
    for i, k in enumerate(STEPS):
        out = entered[STEPS[i + 1]] if i + 1 < len(STEPS) else kept
        rate = f"{entered[k] / seconds[k]:,.0f}" if seconds[k] > 0 else "-"
        print(f"{k:<14}{entered[k]:>10,}{out:>11,}{seconds[k]:>10.3f}{rate:>14}")
    print(f"{'all':<14}{total:>10,}{kept:>11,}{wall:>10.3f}{total / wall:>14,.0f}")


if __name__ == "__main__":
    main()
