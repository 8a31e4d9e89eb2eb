"""Raw backend tokens/s vs the full generation stage, and vs a round of the rounds layer, on the same requests
(goal: stage >= 95% of raw; a round adds no measurable cost over the stage).

    python bench/generation.py                                   # CPU: transformers, and vLLM when importable
    python bench/generation.py --backends transformers --batch-sizes 1,8,64,512 --device cuda   # a GPU machine
    python bench/generation.py --backends instant --max-tokens 128   # the stage alone: its cost per request

Same model (default: SmolLM2-135M dequantised), same requests (chat prompts, fixed seeds, so both runs produce
the same tokens), same shards: "raw" calls `backend.generate` shard by shard; "stage" is `run_generation` into a
fresh store (hashing, cache lookup, retries wrapper, Parquet parts, report); "round" is `Rounds.generate` (the
round's settings, the engine check, the request table, the stage, the join of results to requests). Runs alternate
raw/stage/round `--repeats` times and the best of each is reported (the machine may be shared). Prints a table.
With `--backends instant`, the stage's and a round's own cost per request (replay backend: answers at once).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.backends import ReplayConfig, TransformersConfig, VLLMConfig, get_backend  # noqa: E402
from generators.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams  # noqa: E402
from generators.rounds import Rounds  # noqa: E402
from generators.settings import GenerationSettings  # noqa: E402
from generators.stage import run_generation  # noqa: E402

SUBJECTS = ["rivers", "bees", "volcanoes", "glass", "tides", "maps", "salt", "owls", "clocks", "bridges", "ferns",
            "comets", "paper", "wind", "coral", "iron", "moss", "ink", "snow", "wheat"]


class InstantBackend(Backend):
    """Answers at once with a fixed text: what is left is the stage's own cost per request (its ceiling)."""
    name = "instant"
    model = "none"

    def __init__(self, tokens: int):
        self.text = "word " * tokens
        self.tokens = tokens

    def identity(self):
        return {"backend": self.name}

    def generate(self, requests):
        return [GenerationResult(request_id=r.id, completion_index=0, text=self.text, finish_reason="length",
                                 prompt_tokens=20, completion_tokens=self.tokens) for r in requests]


def stage_cost(n: int, tokens: int, shard_size: int) -> None:
    """Stage time per request with an instant backend: compare with a real backend's time per request."""
    requests = make_requests(n, tokens)
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        run_generation(requests, InstantBackend(tokens), store, shard_size=shard_size, progress=False)
        wall = time.perf_counter() - t0
    print(f"stage cost (instant backend): {n} requests x {tokens} tokens, shard {shard_size}: {wall:.2f} s = "
          f"{wall / n * 1e3:.3f} ms/request ({n * tokens / wall:,.0f} tok/s ceiling)")


def round_cost(n: int, tokens: int, shard_size: int) -> None:
    """Stage vs round with the replay backend (instant answers): the round's own cost per request."""
    import json

    requests = make_requests(n, tokens)
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.jsonl"
        answers.write_text("".join(json.dumps({"request_id": r.id, "text": "word " * tokens,
                                               "completion_tokens": tokens}) + "\n" for r in requests))
        cfg = ReplayConfig(path=str(answers))
        t0 = time.perf_counter()
        run_generation(requests, cfg, Path(tmp) / "stage", shard_size=shard_size, progress=False)
        stage = time.perf_counter() - t0
        t0 = time.perf_counter()
        Rounds(Path(tmp) / "rounds", GenerationSettings(backend=cfg, shard_size=shard_size), source="bench",
               progress=False, log=lambda m: None).generate("bench", requests)
        rnd = time.perf_counter() - t0
    print(f"replay backend, {n} requests, shard {shard_size}: stage {stage / n * 1e3:.3f} ms/request, round "
          f"{rnd / n * 1e3:.3f} ms/request (the round adds {(rnd - stage) / n * 1e3:+.3f} ms/request: request table, "
          f"join of results to requests)")


def make_requests(n: int, max_tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(
        id=f"bench-{i}", messages=[{"role": "user", "content": f"Write a short lesson about {SUBJECTS[i % 20]} "
                                                               f"for class {i % 7 + 1}."}],
        sampling=SamplingParams(temperature=0.6, top_p=0.95, top_k=50, repetition_penalty=1.2,
                                max_tokens=max_tokens, seed=i)) for i in range(n)]


def raw_run(backend, requests, shard_size):
    t0 = time.perf_counter()
    tokens = 0
    for i in range(0, len(requests), shard_size):
        tokens += sum(r.completion_tokens or 0 for r in backend.generate(requests[i:i + shard_size]))
    return tokens, time.perf_counter() - t0


def stage_run(backend, requests, shard_size):
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        report = run_generation(requests, backend, store, shard_size=shard_size, progress=False)
        wall = time.perf_counter() - t0  # includes planning and the last write, not only report.wall_s
    return report.completion_tokens, wall, report


def round_run(cfg, requests, shard_size):
    with tempfile.TemporaryDirectory() as store:
        rounds = Rounds(Path(store), GenerationSettings(backend=cfg, shard_size=shard_size), source="bench",
                        progress=False, log=lambda m: None)
        t0 = time.perf_counter()
        out = rounds.generate("bench", requests)
        wall = time.perf_counter() - t0
    return out.report.completion_tokens, wall


def bench_one(name, cfg, n, max_tokens, shard_size, repeats):
    backend = get_backend(cfg)  # the round finds this same engine (one per process and config)
    requests = make_requests(n, max_tokens)
    backend.generate(make_requests(2, 4))  # load + warm up outside the timings
    raw, stage, rnd, report = [], [], [], None
    for _ in range(repeats):
        raw.append(raw_run(backend, requests, shard_size))
        tokens, wall, report = stage_run(backend, requests, shard_size)
        stage.append((tokens, wall))
        rnd.append(round_run(cfg, requests, shard_size))
    raw_tps = max(t / s for t, s in raw)
    stage_tps = max(t / s for t, s in stage)
    round_tps = max(t / s for t, s in rnd)
    return {"backend": name, "requests": n, "shard": shard_size, "max_tokens": max_tokens,
            "tokens": raw[0][0], "raw_tok_s": raw_tps, "stage_tok_s": stage_tps, "ratio": stage_tps / raw_tps,
            "round_tok_s": round_tps, "round_ratio": round_tps / raw_tps,
            "cpu": report.cpu_util_pct, "gpu": report.gpu_util_pct}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="transformers,vllm",
                    help="transformers, vllm, instant (the stage alone: its cost per request)")
    ap.add_argument("--model", default=None, help="local HF folder; default SmolLM2-135M dequantised")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--batch-sizes", default="16", help="transformers batch sizes to sweep, e.g. 1,8,64,512")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads for transformers")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    rows = []
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "instant" in names:
        for n, shard in ((max(args.requests, 1024), 64), (max(args.requests, 10240), 512)):
            stage_cost(n, args.max_tokens, shard)
            round_cost(n, args.max_tokens, shard)
    if "transformers" in names:
        for bs in [int(x) for x in args.batch_sizes.split(",")]:
            cfg = TransformersConfig(model=args.model, device=args.device, batch_size=bs, threads=args.threads)
            n = max(args.requests, bs * 2)
            shard = max(args.shard_size, bs)
            rows.append(bench_one(f"transformers b={bs}", cfg, n, args.max_tokens, shard, args.repeats))
            get_backend(cfg).close()
            print_row(rows[-1], header=len(rows) == 1)
    if "vllm" in names:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            print("vllm: not importable here, skipped (pip install -e .[vllm])", file=sys.stderr)
        else:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            cfg = VLLMConfig(model=args.model, max_model_len=2048, enforce_eager=args.device != "cuda")
            rows.append(bench_one("vllm", cfg, args.requests, args.max_tokens, args.shard_size, args.repeats))
            print_row(rows[-1], header=len(rows) == 1)
            get_backend(cfg).close()


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'backend':<22}{'requests':>9}{'shard':>7}{'max_tok':>8}{'tokens':>8}{'raw tok/s':>11}"
              f"{'stage tok/s':>13}{'stage/raw':>11}{'round tok/s':>13}{'round/raw':>11}{'CPU%':>6}{'GPU%':>6}")
    util = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    print(f"{r['backend']:<22}{r['requests']:>9}{r['shard']:>7}{r['max_tokens']:>8}{r['tokens']:>8}"
          f"{r['raw_tok_s']:>11.1f}{r['stage_tok_s']:>13.1f}{r['ratio']:>10.1%}{r['round_tok_s']:>13.1f}"
          f"{r['round_ratio']:>10.1%}{util(r['cpu']):>6}{util(r['gpu']):>6}",
          flush=True)


if __name__ == "__main__":  # vLLM spawns its engine process: the guard is required
    main()
