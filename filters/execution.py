"""Run a list of datatrove steps with one of datatrove's executors (local, Ray, Slurm) — never our own.

`execution.executor=local` runs the tasks in this machine's processes; `ray` submits them to a Ray cluster
(`ray_address`, or a local Ray started here with `ray_cpus` CPUs); `slurm` writes an sbatch array script
(`sbatch_script(...)` shows it without submitting) whose tasks load the pickled pipeline on the cluster.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from corpora.config import StrictModel


class ExecutorConfig(StrictModel):
    executor: Literal["local", "ray", "slurm"] = "local"
    workers: int = Field(1, ge=1)  # tasks run at once (local processes / Ray tasks / Slurm array slots)
    cpus_per_task: int = Field(1, ge=1)  # Ray and Slurm
    mem_per_cpu_gb: float = Field(2, gt=0)  # Ray and Slurm
    gpus_per_task: int = Field(0, ge=0)  # Ray and Slurm
    # Slurm
    partition: str | None = None
    time: str = "12:00:00"
    qos: str | None = None
    job_name: str = "flows-data-engine"
    venv_path: str | None = Field(None, description="Slurm: `source` this activate script before each task")
    env_command: str | None = Field(None, description="Slurm: a shell line run before each task (wins over venv)")
    sbatch_args: dict[str, str] = {}
    # Ray
    ray_address: str | None = None  # None: attach to RAY_ADDRESS if set, else start a local Ray
    ray_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray started here (None: all)")


def _slurm_executor(pipeline: list, tasks: int, cfg: ExecutorConfig, logging_dir: str):
    from datatrove.executor import SlurmPipelineExecutor

    if not cfg.partition:
        raise ValueError("execution.partition: required for execution.executor=slurm")
    return SlurmPipelineExecutor(pipeline, tasks=tasks, workers=cfg.workers, time=cfg.time,
                                 partition=cfg.partition, cpus_per_task=cfg.cpus_per_task,
                                 mem_per_cpu_gb=max(1, round(cfg.mem_per_cpu_gb)), gpus_per_task=cfg.gpus_per_task,
                                 qos=cfg.qos or "", job_name=cfg.job_name, venv_path=cfg.venv_path,
                                 env_command=cfg.env_command, sbatch_args=dict(cfg.sbatch_args),
                                 logging_dir=logging_dir, skip_completed=False)


def ensure_ray(cfg: ExecutorConfig) -> None:
    """Attach to the configured Ray cluster, or start a local one (no dashboard), once per process."""
    import os

    import ray

    if ray.is_initialized():
        return
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    ray.init(address=address, num_cpus=None if address else cfg.ray_cpus, include_dashboard=False,
             ignore_reinit_error=True, log_to_driver=False)


def make_executor(pipeline: list, tasks: int, cfg: ExecutorConfig, logging_dir: str):
    if cfg.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(cfg.workers, tasks),
                                     logging_dir=logging_dir, skip_completed=False)
    if cfg.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        ensure_ray(cfg)
        return RayPipelineExecutor(pipeline, tasks=tasks, workers=cfg.workers, logging_dir=logging_dir,
                                   skip_completed=False, cpus_per_task=cfg.cpus_per_task,
                                   mem_per_cpu_gb=cfg.mem_per_cpu_gb, gpus_per_task=cfg.gpus_per_task)
    return _slurm_executor(pipeline, tasks, cfg, logging_dir)


def sbatch_script(pipeline: list, tasks: int, cfg: ExecutorConfig, logging_dir: str) -> str:
    """The sbatch array script datatrove would submit for these steps (built by datatrove's own
    `get_sbatch_args` / `get_launch_file_contents`, as in its `launch_job`), without submitting anything."""
    ex = _slurm_executor(pipeline, tasks, cfg, logging_dir)
    max_array = min(tasks, ex.max_array_size) if ex.max_array_size != -1 else tasks
    srun_args = " ".join(f"--{k}={v}" for k, v in (ex.srun_args or {}).items())
    pik = ex.logging_dir.resolve_paths("executor.pik")
    run = (f"srun {srun_args} -l -n {ex.nodes_per_task} launch_pickled_pipeline {pik}" if ex.with_srun
           else f"launch_pickled_pipeline {pik}")
    return ex.get_launch_file_contents(ex.get_sbatch_args(max_array), run)


def run_and_wait(pipeline: list, tasks: int, cfg: ExecutorConfig, logging_dir: str | Path, *,
                 outstanding: Callable[[], list[str]], on_progress: Callable[[int], None] | None = None,
                 timeout_s: float | None = None, name: str = "datatrove-executor") -> list[str]:
    """THE one "run a datatrove executor and wait for it" loop (filter stage, dedup stage, dating).

    `executor.run()` runs in a thread: local and Ray block in it until every task ended; Slurm returns once the
    array is submitted, so the tasks' outputs are awaited. `outstanding()` names the outputs not written yet;
    `on_progress(done)` is called whenever the count of written ones changes. An executor error is raised; the
    outputs still outstanding at the end are returned (the caller names them in its own error)."""
    executor = make_executor(pipeline, tasks=tasks, cfg=cfg, logging_dir=str(logging_dir))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            executor.run()
        except BaseException as e:  # noqa: BLE001 - raised below, after the wait loop
            errors.append(e)

    th = threading.Thread(target=target, name=name, daemon=True)
    th.start()
    reported, started = -1, time.monotonic()
    while True:
        alive = th.is_alive()
        left = outstanding()
        if on_progress and tasks - len(left) != reported:
            reported = tasks - len(left)
            on_progress(reported)
        if errors or (not alive and (cfg.executor != "slurm" or not left)):
            break
        if timeout_s and time.monotonic() - started > timeout_s:
            break
        if alive:
            th.join(timeout=0.2)  # returns the moment the executor ends (no up-to-0.2 s lag per stage)
        else:
            time.sleep(5)  # slurm: the array is submitted, its outputs are awaited
    th.join(timeout=0 if errors or alive else None)
    if errors:
        raise errors[0]
    return outstanding()
