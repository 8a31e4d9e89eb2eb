"""Rounds: named passes of one generator run through the generation stage.

`rounds.generate(name, requests)` runs one round: the round's settings (the run's, with `generation.rounds.<name>`
on top) pick its backend; its results are cached under `<work>/<name>/` (resume, failure bisection, a report per
round); the results come back joined to the requests that asked for them (`corpora.generated.join_results`).
Different rounds may use different models: before a round loads its engine, every other engine this process
holds is released, so two never share a GPU. `rounds.until(...)` loops a round ("until N accepted or R rounds");
every finished round is a cache hit on rerun, so a rerun after a kill regenerates nothing that was written.

Training and scoring are places of the mechanism too, so a generator never releases engines or keeps caches itself:
`rounds.train(name, key, fit)` is a training step (e.g. Impossible Distillation's student): every engine is
released, `fit` trains into `<work>/<name>/<key>/` (the key names what was trained on: a rerun with the same key
finds the folder and the trainer reuses it), and the folder and fit's stats come back (every step is also listed
in `rounds.trained[name]`); `rounds.hold(name)` releases every engine before the caller loads a model of its own
(an NLI critic, an embedder).

No Prefect here: a flow that wants one Prefect task per shard passes a `shard_runner`.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from corpora.generated import join_results
from corpora.shards import write_table_atomic
from generators.backends import get_backend, release_backends
from generators.backends.base import GenerationRequest
from generators.settings import GenerationSettings
from generators.stage import GenerationReport, RetryPolicy, load_results, requests_to_table, run_generation

# (requests, backend config, store dir, the round's settings) -> report; e.g. Prefect tasks mapped over shards
ShardRunner = Callable[[Sequence[GenerationRequest], Any, Path, GenerationSettings], GenerationReport]


@dataclass
class RoundOutput:
    name: str
    requests: list[GenerationRequest]
    ok: list[dict]  # generated records (corpora.generated) of the completions that succeeded
    failed: list[dict]  # one record per failed request, reason "generation_failed" + error
    report: GenerationReport

    @property
    def by_request(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in self.ok:
            out.setdefault(r["request_id"], []).append(r)
        return out


def round_dir_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.#-]+", name):
        raise ValueError(f"round name {name!r}: use letters, digits, '_', '-', '.', '#'")
    return name.replace("#", "-")


@dataclass
class Rounds:
    """The rounds of one run. `source` is written on every record (the generator's name)."""

    work_dir: Path
    settings: GenerationSettings
    source: str
    progress: bool = True
    shard_runner: ShardRunner | None = None
    log: Callable[[str], None] = print
    reports: dict[str, dict] = field(default_factory=dict)
    trained: dict[str, list[dict]] = field(default_factory=dict)  # step name -> [{"folder", "key", stats...}]
    wall_s: float = 0.0

    def hold(self, name: str) -> None:
        """Release every generation engine this process holds before `name` loads a model of its own."""
        released = release_backends()
        if released:
            self.log(f"{name}: released {', '.join(released)} before loading its model")

    def train(self, name: str, key: str, fit: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
        """Training step `name`: every engine is released, then `fit(folder)` trains into (or reuses, when its
        trainer finds a finished model there) `<work>/<name>/<key>/`; returns (the folder, fit's stats). `name`
        follows the round names' rule ("student#2" -> folder "student-2")."""
        self.hold(name)
        folder = Path(self.work_dir) / round_dir_name(name) / key
        stats = fit(folder) or {}
        self.trained.setdefault(name, []).append({"folder": str(folder), "key": key, **stats})
        return folder, stats

    def generate(self, name: str, requests: Sequence[GenerationRequest],
                 settings: GenerationSettings | None = None) -> RoundOutput:
        t0 = time.perf_counter()
        s = (settings or self.settings).for_round(name)
        requests = list(requests)
        if not requests:  # nothing to ask: no engine is loaded for it (a vLLM start costs half a minute)
            report = GenerationReport()
            self.reports[name] = report.as_dict()
            return RoundOutput(name, [], [], [], report)
        bcfg = s.backend_config()
        released = release_backends(keep=bcfg)  # one engine at a time
        if released:
            self.log(f"round {name}: released {', '.join(released)} before loading the next engine")
        store = Path(self.work_dir) / round_dir_name(name)
        write_table_atomic(store / "requests.parquet", requests_to_table(requests))  # for replay / batch APIs
        if s.shard_tasks and self.shard_runner is not None:
            report = self.shard_runner(requests, bcfg, store, s)
        else:
            report = run_generation(requests, bcfg, store, shard_size=s.shard_size,
                                    policy=RetryPolicy(s.max_retries, s.backoff_s), workers=s.workers,
                                    device_groups=s.device_groups, progress=self.progress)
        engine = get_backend(bcfg)
        report.model, report.backend = engine.model, engine.name
        ok, failed = join_results(load_results(store, requests, engine).to_pylist(), requests, name, self.source)
        self.reports[name] = report.as_dict()
        self.log(f"round {name}: {report.requests} requests ({report.cached} cached, {report.generated} generated, "
                 f"{report.failed} failed) with {report.backend} {Path(report.model).name}, "
                 f"{report.tokens_per_s:.1f} tok/s")
        self.wall_s += time.perf_counter() - t0
        return RoundOutput(name, requests, ok, failed, report)

    def until(self, name: str, build: Callable[[int, list[dict]], Sequence[GenerationRequest]],
              accept: Callable[[RoundOutput, list[dict]], list[dict]], target: int, max_rounds: int
              ) -> tuple[list[dict], list[RoundOutput]]:
        """Rounds `name#1`, `name#2`, ...: `build(i, accepted)` makes round i's requests (none: stop),
        `accept(output, accepted)` returns the rows it newly accepts. Stops at `target` accepted rows or after
        `max_rounds`. Returns (accepted rows, every round's output)."""
        accepted: list[dict] = []
        outputs: list[RoundOutput] = []
        for i in range(1, max_rounds + 1):
            if len(accepted) >= target:
                break
            requests = list(build(i, accepted))
            if not requests:
                break
            out = self.generate(f"{name}#{i}", requests)
            outputs.append(out)
            accepted += accept(out, accepted)
        return accepted[:target] if target else accepted, outputs

    def summary(self) -> dict[str, Any]:
        """Totals over rounds, for stats.json (each round's own report is under `rounds`)."""
        total = {k: sum(r[k] for r in self.reports.values()) for k in GenerationReport.TOTALS}
        total["models"] = sorted({r["model"] for r in self.reports.values() if r["model"]})
        gen_s = sum(r["wall_s"] for r in self.reports.values())
        total.update(wall_s=round(gen_s, 3), tokens_per_s=round(total["completion_tokens"] / gen_s, 1) if gen_s else 0,
                     rounds=self.reports)
        return total
