"""WHP generic-label throughput: blocks/s of the two-model scorer (baseline on the translated block, reinforced on
the original, hidden states -> output head at the aligned positions, 5 alphas) by block length and batch size, and
the cost of the pure part (translate + tokenise + align) per block.

Targets: TOFU forget10 (../shared/data/unlearning/tofu_forget10.json, 20 QA pairs per author joined into one
document) with anchors for its authors' names where present, else the bundled sample repeated. The reinforced model
is `--reinforced DIR`, else a 2-step reinforce of SmolLM2 on the targets (made once into the cache; its weights do
not change the speed).

    python bench/unlearning_whp.py [--blocks 8] [--device cpu] [--threads N] [--reinforced DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators import whp  # noqa: E402
from generators.backends.local_models import cache_root, dequantised_smollm2_dir  # noqa: E402
from generators.reinforce import ReinforceSettings, reinforce  # noqa: E402

TOFU = ROOT.parent / "shared" / "data" / "unlearning" / "tofu_forget10.json"
SAMPLE = ROOT / "corpora" / "sample_data" / "unlearning_target.jsonl"
ALPHAS = [1.0, 2.0, 4.0, 8.0, 16.0]


def targets() -> tuple[list[whp.TargetDoc], dict[str, list[str]], str]:
    if TOFU.is_file():
        qa = json.loads(TOFU.read_text())
        docs = [whp.TargetDoc(f"author{i // 20}", "\n\n".join(whp.qa_text(x["question"], x["answer"])
                                                             for x in qa[i:i + 20]), "tofu_forget10")
                for i in range(0, len(qa), 20)]
        anchors = {"Basil Mahfouz Al-Kuwaiti": ["Omar Haddad"], "Nikolai Abilov": ["Peter Ivanov"],
                   "Kuwait City": ["a coastal city"], "Astana": ["a capital city"]}
        return docs, anchors, f"{TOFU.name}: {len(docs)} documents of 20 QA pairs"
    text = "\n\n".join(d["text"] for d in map(json.loads, SAMPLE.read_text().splitlines()))
    docs = [whp.TargetDoc(f"sample{i}", text, "sample") for i in range(6)]
    anchors = whp.load_anchors(ROOT / "corpora" / "sample_data" / "unlearning_anchors.json")
    return docs, anchors, f"bundled sample x6 ({TOFU} absent)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=4, help="blocks timed per setting")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--reinforced", default=None)
    ap.add_argument("--settings", default="128x1,128x4,512x1,512x4", help="block_tokens x batch_size, ...")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    docs, anchors, what = targets()
    base = str(dequantised_smollm2_dir())
    reinforced = args.reinforced
    if not reinforced:
        reinforced = str(cache_root() / "bench" / "whp-reinforced")
        reinforce(base, [d.text for d in docs], ReinforceSettings(steps=2, block_tokens=64, eval_blocks=2, device=args.device),
                  reinforced, log=lambda m: None)
    t = time.perf_counter()
    scorer = whp.PairScorer(base, reinforced, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t
    pattern = whp.anchor_pattern(anchors)
    rows = []
    for setting in args.settings.split(","):
        n_tok, batch = map(int, setting.split("x"))
        t = time.perf_counter()
        blocks = [b for d in docs for b in whp.split_blocks(d, scorer.tokenizer, n_tok)]
        blocks = [b for b in blocks if len(b.input_ids) == n_tok][:args.blocks]
        for b in blocks:
            whp.prepare_block(b, scorer.tokenizer, anchors, pattern)
        prep_ms = (time.perf_counter() - t) * 1000 / max(len(blocks), 1)
        scorer.label(blocks[:batch], ALPHAS)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, len(blocks), batch):
            scorer.label(blocks[i:i + batch], ALPHAS)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        s = time.perf_counter() - t
        rows.append((n_tok, batch, len(blocks), s, len(blocks) / s, len(blocks) * n_tok / s, prep_ms))
    print(f"WHP labelling, SmolLM2-135M baseline + reinforced copy ({args.dtype}) on {args.device} "
          f"({platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}); targets: {what}; "
          f"{len(ALPHAS)} alphas per block; models loaded in {load_s:.1f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes share them)")
    print(f"{'block tokens':>12} {'batch':>5} {'blocks':>6} {'seconds':>8} {'blocks/s':>9} {'tokens/s':>9} "
          f"{'prep ms/block':>13}")
    for n_tok, batch, n, s, bps, tps, prep in rows:
        print(f"{n_tok:>12} {batch:>5} {n:>6} {s:>8.2f} {bps:>9.3f} {tps:>9.1f} {prep:>13.2f}")


if __name__ == "__main__":
    main()
