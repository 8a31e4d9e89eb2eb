"""Run a list of datatrove steps with one of datatrove's executors (local, Ray, Slurm) — never our own."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from corpora.config import StrictModel


class ExecutorConfig(StrictModel):
    executor: Literal["local", "ray", "slurm"] = "local"
    workers: int = Field(1, ge=1)  # tasks run at once (local processes / Ray tasks / Slurm array slots)
    # Slurm
    partition: str | None = None
    time: str = "12:00:00"
    cpus_per_task: int = Field(1, ge=1)
    mem_per_cpu_gb: float = Field(2, gt=0)
    sbatch_args: dict[str, str] = {}
    # Ray
    ray_address: str | None = None  # None: start/attach a local Ray


def make_executor(pipeline: list, tasks: int, cfg: ExecutorConfig, logging_dir: str):
    if cfg.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(cfg.workers, tasks),
                                     logging_dir=logging_dir, skip_completed=False)
    if cfg.executor == "ray":
        import ray
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(address=cfg.ray_address, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False)
        return RayPipelineExecutor(pipeline, tasks=tasks, workers=cfg.workers, logging_dir=logging_dir,
                                   skip_completed=False, cpus_per_task=cfg.cpus_per_task,
                                   mem_per_cpu_gb=cfg.mem_per_cpu_gb)
    from datatrove.executor import SlurmPipelineExecutor

    if not cfg.partition:
        raise ValueError("executor.partition: required for executor=slurm")
    return SlurmPipelineExecutor(pipeline, tasks=tasks, workers=cfg.workers, time=cfg.time,
                                 partition=cfg.partition, cpus_per_task=cfg.cpus_per_task,
                                 mem_per_cpu_gb=int(cfg.mem_per_cpu_gb), sbatch_args=cfg.sbatch_args,
                                 logging_dir=logging_dir, skip_completed=False)
