"""The generation stage's shards as Prefect tasks (`generation.shard_tasks`): optional scale-out of a round through
the flow's task runner (threads here; `prefect-ray`'s RayTaskRunner on a cluster). Part of the generator mechanism
(`flows/generation.py`); the stage itself (`generators/stage.py`) knows nothing of Prefect."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from prefect import task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.reporting import run_logger
from generators.backends import get_backend
from generators.settings import GenerationSettings
from generators.stage import GenerationReport, ResultStore, RetryPolicy, Shard, ShardStats, plan_shards, run_shard


@task(name="plan-shards", cache_policy=NO_CACHE)
def plan_round_shards(requests: list, bcfg, store: Path, shard_size: int) -> tuple[list[Shard], int]:
    shards, _, cached = plan_shards(requests, get_backend(bcfg).identity(), ResultStore(store), shard_size)
    run_logger().info("%d requests cached, %d shards to generate", cached, len(shards))
    return shards, cached


@task(name="generate-shard", cache_policy=NO_CACHE)
def generate_shard_task(shard: Shard, bcfg, store: Path, max_retries: int, backoff_s: float) -> ShardStats:
    return run_shard(shard, bcfg, store, RetryPolicy(max_retries, backoff_s))


def _shard_placement(bcfg):
    """Under `prefect-ray`'s RayTaskRunner, each shard task of a vLLM backend asks Ray for its engine's GPUs
    (tensor_parallel_size), so Ray places one engine per GPU group; otherwise nothing changes."""
    from contextlib import nullcontext

    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None)
    if type(runner).__name__ != "RayTaskRunner" or getattr(bcfg, "kind", None) != "vllm":
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=bcfg.tensor_parallel_size)


def shards_as_tasks(requests: Sequence, bcfg, store: Path, s: GenerationSettings) -> GenerationReport:
    """One Prefect task per shard, run by the flow's task runner (threads here; `prefect-ray`'s RayTaskRunner on a
    cluster, where each worker process keeps one engine). Every shard writes its own part into the round's store,
    so the rows are those of the stage's own loop (same cache keys: a rerun either way reuses them)."""
    t0 = time.perf_counter()
    shards, cached = plan_round_shards(list(requests), bcfg, store, s.shard_size)
    report = GenerationReport(requests=len(requests), cached=cached)
    with _shard_placement(bcfg):
        futures = generate_shard_task.map(shards, unmapped(bcfg), unmapped(store), unmapped(s.max_retries),
                                          unmapped(s.backoff_s))
    for stats in futures.result():
        report.add(stats)
    report.wall_s = time.perf_counter() - t0
    return report


def any_shard_tasks(s: GenerationSettings) -> bool:
    return s.shard_tasks or any(r.shard_tasks for r in s.rounds.values())
