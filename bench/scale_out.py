"""Scale-out runs side by side: wall time and peak memory (RSS of this process and all its descendants: the Ray
head, raylet and workers, datatrove's worker processes), against a real local Prefect server started here.

    python bench/scale_out.py [--docs 350] [--requests 200]

Rows: dolma with execution.executor=local vs ray (2 workers), the generation stage's own loop vs shards as Prefect
tasks on prefect-ray's RayTaskRunner (replay backend). Each pair is checked for identical rows. Numbers include
start-up (Ray, datatrove executors, Prefect task runs): on a 2-core machine they measure overhead, not speed-up.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


class PeakRSS:
    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc, self.interval, self.peak, self._stop = psutil.Process(), interval, 0, threading.Event()

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a process that ended between listing and reading
                pass
        return total

    def __enter__(self):
        self.peak = self._sample()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()
        self.t0 = time.perf_counter()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._sample())

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self._stop.set()
        self.t.join()


def rows(out: Path, kind: str) -> list:
    import pyarrow.parquet as pq

    return [(r["id"], hashlib.sha256(r["text"].encode()).hexdigest()) for f in sorted((out / kind).glob("*.parquet"))
            for r in pq.read_table(f, columns=["id", "text"]).to_pylist()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=350)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    from test_server import api, free_port  # noqa: F401
    from flows.server_cli import start_server, stop_server

    base = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    state = start_server(base / "server", port=free_port(), ui=False, timeout_s=150)
    os.environ["PREFECT_API_URL"] = state["url"]
    results = []
    try:
        import ray

        with api(state["url"]):
            from corpora.sample import sample_corpus_path
            from filters.execution import ExecutorConfig
            from flows.dolma import DolmaConfig, dolma_flow

            lines = sample_corpus_path().read_text(encoding="utf-8").splitlines()[:args.docs]
            inputs = []
            for k in range(args.files):
                f = base / f"in{k}.jsonl"
                f.write_text("\n".join(lines[k::args.files]) + "\n", encoding="utf-8")
                inputs.append(str(f))
            with PeakRSS() as m:
                dolma_flow(DolmaConfig(inputs=inputs, output=str(base / "dolma-local")))
            results.append(("dolma", "local executor", m.wall, m.peak))
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PREFECT_API_URL": state["url"]}})
            with PeakRSS() as m:
                dolma_flow(DolmaConfig(inputs=inputs, output=str(base / "dolma-ray"),
                                       execution=ExecutorConfig(executor="ray", workers=2)))
            results.append(("dolma", "ray executor, 2 workers (Ray up)", m.wall, m.peak))
            same_dolma = all(rows(base / "dolma-local", k) == rows(base / "dolma-ray", k) for k in ("data", "rejected"))

            from prefect import flow
            from prefect_ray import RayTaskRunner

            from flows.generation import shards_as_tasks
            from generators.backends import ReplayConfig
            from generators.backends.base import GenerationRequest
            from generators.settings import GenerationSettings
            from generators.stage import load_results, run_generation

            reqs = [GenerationRequest(id=f"r{i:05d}", prompt=f"topic {i}") for i in range(args.requests)]
            replay = base / "answers.jsonl"
            replay.write_text("".join(json.dumps({"request_id": r.id, "text": f"answer {i} " * 20}) + "\n"
                                      for i, r in enumerate(reqs)))
            bcfg = ReplayConfig(path=str(replay))
            with PeakRSS() as m:
                run_generation(reqs, bcfg, base / "gen-local", shard_size=16, progress=False)
            results.append(("generation (replay)", "stage loop, in-process", m.wall, m.peak))

            @flow(name="bench-ray-shards", task_runner=RayTaskRunner())
            def on_ray():
                return shards_as_tasks(reqs, bcfg, base / "gen-ray", GenerationSettings(backend=bcfg, shard_size=16,
                                                                                         shard_tasks=True))

            with PeakRSS() as m:
                on_ray()
            results.append(("generation (replay)", "shard tasks on RayTaskRunner", m.wall, m.peak))
            key = lambda s: [(r["request_id"], r["text"], r["cache_key"]) for r in load_results(s, reqs, bcfg).to_pylist()]  # noqa: E731
            same_gen = key(base / "gen-local") == key(base / "gen-ray")
    finally:
        try:
            import ray

            ray.shutdown()
        finally:
            stop_server(base / "server")
    print(f"\n{args.docs} docs in {args.files} files; {args.requests} replay requests, shards of 16; "
          f"{os.cpu_count()} CPUs")
    print("| run | how | wall s | peak RSS MB |\n|---|---|---:|---:|")
    for name, how, wall, peak in results:
        print(f"| {name} | {how} | {wall:.1f} | {peak / 2**20:,.0f} |")
    print(f"\nidentical rows: dolma {same_dolma}, generation {same_gen}")


if __name__ == "__main__":
    main()
