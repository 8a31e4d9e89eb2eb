"""Tokenize+write throughput of `tokenize` (corpora/tokenized.py: datatrove DocumentTokenizer, or megatron-core's
IndexedDatasetBuilder with `--format megatron`; SmolLM2 tokenizer, EOS per document) on generated docs, one process;
tokens/s per core (RAYON_NUM_THREADS=1) and peak RSS (of the whole process: generation of the docs included).

    RAYON_NUM_THREADS=1 python bench/tokenize_shards.py --docs 1000000 --format datatrove   # the issue's size
"""
from __future__ import annotations

import sys

# this file is named like the stdlib `tokenize`: keep bench/ off the import path so `import tokenize` is the stdlib's
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from corpora.tokenized import TokenizedConfig, tokenize_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--words", type=int, default=120, help="mean words per document")
    ap.add_argument("--format", choices=("datatrove", "megatron"), default="datatrove")
    args = ap.parse_args()
    from generators.backends.local_models import dequantised_smollm2_dir

    tok = dequantised_smollm2_dir()
    rng = np.random.default_rng(0)
    vocab = np.array("the of and to in a is that for it as was with be by on not he this are or his from at which "
                     "data model language training token mixture corpus scaling law family ratio".split())
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        files, n, shard = [], 0, 100_000
        while n < args.docs:
            k = min(shard, args.docs - n)
            texts = [" ".join(vocab[rng.integers(0, len(vocab), rng.integers(20, 2 * args.words))]) for _ in range(k)]
            f = d / f"part-{len(files):05d}.parquet"
            pq.write_table(pa.table({"text": texts, "source": ["gen"] * k}), f)
            files.append(f)
            n += k
        t0, c0 = time.perf_counter(), time.process_time()
        m = tokenize_files(files, d / "out", tok, TokenizedConfig(format=args.format))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = sum(f.stat().st_size for f in (d / "out").iterdir())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"format={args.format} docs={m['documents']:,} tokens={m['tokens']:,} seconds={dt:.2f} cpu_s={cpu:.2f} "
          f"tokens/s/core={m['tokens'] / dt:,.0f} tokens/cpu_s={m['tokens'] / cpu:,.0f} "
          f"docs/s={m['documents'] / dt:,.0f} output_mb={size / 2**20:,.0f} peak_rss_mb={rss:.0f} "
          f"(RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}; load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
