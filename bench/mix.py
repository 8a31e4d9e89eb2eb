"""`flows run mix` at scale, on one core: tokens counted and mixed per second, and peak memory by corpus size.

Corpus (generated here, written before the measured run): N documents of 15-45 words drawn from the words of the
bundled sample corpus, in Hive partitions `data/lang={en,de,fr}/part-*.parquet` (70/20/10% of the documents,
50k rows per file), with a `quality_score` column. Mixture: one source, rule `quality_score >= 0.2` (drops 20%),
shares by `lang` en 0.60 / de 0.25 / fr 0.15 with a budget of 80% of the kept tokens, so `en` is downsampled and
`fr` repeated (1.2 epochs). The SmolLM2 tokenizer counts the tokens.

Each size runs `mix_flow` (a real Prefect flow run, ephemeral API) in a fresh process pinned to one core
(`taskset -c 0`, TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1, Arrow with one thread); peak memory is that
process's peak RSS (VmHWM; the Prefect server runs in its own process and is not counted). The shuffle holds one bucket
(`--bucket-mb`, default 32) and a scatter buffer (`--buffer-mb`, default 16) at a time, so memory should stay
flat as N grows: more buckets, not bigger ones.

  python bench/mix.py                    # 100k and 1M documents (about 5 minutes on a shared core)
  python bench/mix.py --sizes 20000      # quick try
  python bench/mix.py --save             # also write bench/results/mix.txt
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LANGS = (("en", 0.7), ("de", 0.2), ("fr", 0.1))
SHARES = {"en": 0.60, "de": 0.25, "fr": 0.15}
ROWS_PER_FILE = 50_000


def words() -> list[str]:
    text = (ROOT / "corpora" / "sample_data" / "web_sample.jsonl").read_text(encoding="utf-8")
    out = sorted({w for w in text.split() if w.isalpha() and len(w) < 15})
    return out


def generate(n: int, folder: Path, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    vocab = np.array(words(), dtype=object)
    for lang, frac in LANGS:
        m = int(n * frac)
        (folder / f"lang={lang}").mkdir(parents=True, exist_ok=True)
        for k, start in enumerate(range(0, m, ROWS_PER_FILE)):
            rows = min(ROWS_PER_FILE, m - start)
            lens = rng.integers(15, 46, rows)
            idx = rng.integers(0, len(vocab), int(lens.sum()))
            ends = np.cumsum(lens)
            flat = vocab[idx]
            texts = [" ".join(flat[e - l:e]) + "." for e, l in zip(ends, lens)]
            t = pa.table({"id": [f"{lang}-{start + i:08d}" for i in range(rows)], "text": texts,
                          "quality_score": rng.random(rows).round(3)})
            pq.write_table(t, folder / f"lang={lang}" / f"part-{k:05d}.parquet")


def tokens_per_doc(folder: Path, tokenizer: str) -> float:
    import pyarrow.parquet as pq

    from corpora.mix_count import TokenCounter

    f = sorted(folder.rglob("*.parquet"))[0]
    texts = pq.read_table(f, columns=["text"]).column("text").to_pylist()[:2000]
    return float(TokenCounter(tokenizer).count(texts).mean())


def vm_hwm_mb() -> float:
    """This process's peak RSS since it started (VmHWM: reset at exec, unlike ru_maxrss, which keeps the
    forked parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(spec: dict) -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    import flows.cli  # noqa: F401  (the Prefect environment the CLI sets up)
    from flows.mix import MixConfig, mix_flow
    from corpora.mix_sources import MixSource

    import pyarrow.parquet as pq

    from corpora.mix_count import TokenCounter

    base_rss = vm_hwm_mb()
    f = sorted(Path(spec["data"]).rglob("*.parquet"))[-1]  # the tokenizer alone, on the same kind of documents
    texts = pq.read_table(f, columns=["text"]).column("text").to_pylist()[:20_000]
    counter = TokenCounter(spec["tokenizer"])
    t0 = time.perf_counter()
    raw_tokens = int(counter.count(texts).sum())
    raw_tps = raw_tokens / (time.perf_counter() - t0)
    del texts, counter
    cfg = MixConfig(output=spec["output"], by="lang", shares=SHARES, budget_tokens=spec["budget"], seed=0,
                    tokenizer={"path": spec["tokenizer"]}, on_unmet="shrink",
                    shuffle={"bucket_mb": spec["bucket_mb"], "buffer_mb": spec["buffer_mb"]},
                    sources=[MixSource(name="web", paths=[spec["data"]], include=["quality_score >= 0.2"])])
    t0 = time.perf_counter()
    res = mix_flow(cfg)
    wall = time.perf_counter() - t0
    st = res["stats"]
    src = st["sources"]["web"]
    print("RESULT " + json.dumps({
        "docs": src["records_read"], "kept": src["kept"], "tokens_counted": src["tokens_kept"],
        "rows_out": st["invariant"]["rows_data"], "tokens_out": st["invariant"]["tokens_data"],
        "seconds": st["seconds"], "wall": wall, "tokenizer_alone_tok_s": raw_tps, "buckets": st["buckets"], "holds": st["invariant"]["holds"],
        "peak_rss_mb": vm_hwm_mb(), "base_rss_mb": base_rss,
        "groups": {n: {k: g[k] for k in ("target_tokens", "delivered_tokens", "epochs", "max_copies", "status")}
                   for n, g in st["plan"]["groups"].items()}}), flush=True)


def run_size(n: int, tokenizer: str, args, tmp: Path) -> dict:
    data = tmp / f"corpus-{n}" / "data"
    t0 = time.perf_counter()
    generate(n, data)
    gen = time.perf_counter() - t0
    per_doc = tokens_per_doc(data, tokenizer)
    budget = int(0.8 * 0.8 * n * per_doc)  # 80% of the (about 80%) kept tokens
    spec = {"output": str(tmp / f"out-{n}"), "data": str(data), "tokenizer": tokenizer, "budget": budget,
            "bucket_mb": args.bucket_mb, "buffer_mb": args.buffer_mb}
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
    if p.returncode or line is None:
        raise SystemExit(f"size {n}: child failed ({p.returncode}):\n{p.stderr[-3000:]}")
    res = json.loads(line[len("RESULT "):])
    res["generate_s"] = gen
    shutil.rmtree(tmp / f"corpus-{n}", ignore_errors=True)
    shutil.rmtree(tmp / f"out-{n}", ignore_errors=True)
    return res


def table(results: list[dict], args) -> str:
    lines = [f"flows run mix on one core (taskset -c 0), SmolLM2 tokenizer, bucket_mb {args.bucket_mb:g}, "
             f"buffer_mb {args.buffer_mb:g}; generated docs of 15-45 words, Hive partitions lang=en/de/fr",
             f"{'docs':>10} {'tokens counted':>15} {'count tok/s':>12} {'rows out':>10} {'tokens out':>12} "
             f"{'mix tok/s':>10} {'total s':>8} {'buckets':>7} {'peak RSS':>9} {'base':>6}",
             "-" * 107]
    for r in results:
        s = r["seconds"]
        total = sum(s.values())
        rest = total - s["count"]
        lines.append(f"{r['docs']:>10,} {r['tokens_counted']:>15,} {r['tokens_counted'] / s['count']:>12,.0f} "
                     f"{r['rows_out']:>10,} {r['tokens_out']:>12,} {r['tokens_out'] / rest:>10,.0f} "
                     f"{total:>8.1f} {r['buckets']:>7} {r['peak_rss_mb']:>7,.0f}MB {r['base_rss_mb']:>4.0f}MB")
    lines.append("")
    lines.append("count tok/s: tokens of kept documents / count stage (read + rules + tokenize + index); mix tok/s: "
                 "tokens written / plan + scatter + gather + publish;")
    lines.append("tokenizer alone (encode_batch_fast on 20k of the same documents, same core): "
                 + ", ".join(f"{r['tokenizer_alone_tok_s']:,.0f} tok/s" for r in results))
    lines.append("total s: the flow's stages (resolve, count, plan, scatter, gather, publish); base: RSS after "
                 "imports, before the flow")
    for r in results:
        lines.append(f"stage seconds at {r['docs']:,}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items())
                     + f"; invariants hold: {r['holds']}")
        lines.append("  shares: " + "; ".join(
            f"{n} {g['delivered_tokens']:,}/{g['target_tokens']:,} ({(g['delivered_tokens'] / g['target_tokens'] - 1):+.3%}"
            f", {g['epochs']} epochs, max {g['max_copies']} copies)" for n, g in r["groups"].items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--bucket-mb", type=float, default=32.0)
    ap.add_argument("--buffer-mb", type=float, default=16.0)
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from generators.backends.local_models import dequantised_smollm2_dir

    tokenizer = str(dequantised_smollm2_dir())
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-mix-") as tmp:
        for n in args.sizes:
            print(f"{n:,} documents ...", flush=True)
            r = run_size(n, tokenizer, args, Path(tmp))
            print(json.dumps(r), flush=True)
            results.append(r)
    out = table(results, args)
    print(out)
    if args.save:
        (ROOT / "bench" / "results" / "mix.txt").write_text(out + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
