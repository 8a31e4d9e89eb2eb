"""Deployments: every pipeline as a Prefect deployment, registered from the checked-in `prefect.yaml`, run by
process workers of the work pools `cpu` (curation, dedup, dating) and `gpu` (generation rounds).

- One entry flow for every deployment (`pipeline_flow(pipeline, config)`): the config travels as a plain dict,
  validated on the worker by the pipeline's own pydantic model (the same one-line errors as `flows run`), then the
  pipeline's flow runs as its subflow. The pipeline flows take their model; a dict-typed entry keeps Prefect's
  parameter schema independent of each model (a generator's model is a subclass the flow signature doesn't show).
- `deployment_specs(...)` reads `prefect.yaml`, validates each deployment's config by its model *before* anything
  is registered, checks pools, schedules and GPU job variables; `apply_specs(...)` registers them on the server
  (work pools created as `process` pools if missing; the `gpu` pool declares a `gpus` job variable).
- `trigger(...)` starts a registered deployment (with overrides merged over its stored config and validated
  here first) and follows its state until it is final. It first asks the server for the pool's workers
  (`read_workers_for_work_pool`): with none ONLINE and heartbeating, it says so at once (NoWorker, no run created)
  instead of leaving a run Scheduled until it is Late.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from prefect import flow
from pydantic import BaseModel, ValidationError

from flows.config import ConfigError, _deep_merge, _explain, _set_dotted, parse_set
from flows.registry import PIPELINES, UnknownPipeline, get_pipeline

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT_FILE = PROJECT_DIR / "prefect.yaml"
ENTRY_FLOW = "pipeline"  # the entry flow's name: deployments are `pipeline/<deployment name>`
ENTRYPOINT = "flows.deployments:pipeline_flow"
POOLS = {"cpu": "curation, dedup and dating", "gpu": "generation rounds (one engine per GPU group)"}
GPUS_VARIABLE = {"title": "GPUs", "type": "integer", "minimum": 0, "default": 1,
                 "description": "GPUs a flow run of this deployment uses: CUDA_VISIBLE_DEVICES 0..gpus-1 unless env "
                                "sets it; the generation stage runs one engine per GPU group"}


class DeployError(ValueError):
    """A bad prefect.yaml or deployment: one line naming the file, the deployment and the reason."""


# ---- the entry flow (what a worker runs) ----------------------------------------------------------------------
def validate_config(pipeline: str, config: dict[str, Any], where: str = "") -> BaseModel:
    p = get_pipeline(pipeline)
    try:
        return p.config_model.model_validate(config or {})
    except ValidationError as err:
        raise ConfigError(where + _explain(p.config_model, err)) from None


@flow(name=ENTRY_FLOW, log_prints=True)
def pipeline_flow(pipeline: str, config: dict[str, Any]) -> dict:
    """Run one pipeline from its config as a dict (validated by the pipeline's model, checked as `flows run`
    checks it: output folder, inputs, model paths), as a subflow named after the pipeline."""
    from corpora.plan import check_output

    cfg = validate_config(pipeline, config, f"{pipeline}: ")
    p = get_pipeline(pipeline)
    check_output(cfg.output, list(getattr(cfg, "inputs", []) or []))
    if p.preflight is not None:
        p.preflight(cfg)
    runner = task_runner_for(cfg)
    return (p.flow.with_options(task_runner=runner) if runner is not None else p.flow)(cfg)


def task_runner_for(cfg: BaseModel):
    """`prefect-ray`'s RayTaskRunner for a generator run whose shards are Prefect tasks (`generation.shard_tasks`,
    or a round's) with `execution.executor=ray` (the cluster at `execution.ray_address`); None: the flow's own."""
    gen, ex = getattr(cfg, "generation", None), getattr(cfg, "execution", None)
    if gen is None or ex is None or ex.executor != "ray":
        return None
    if not (getattr(gen, "shard_tasks", False) or any(r.shard_tasks for r in getattr(gen, "rounds", {}).values())):
        return None
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ValueError("execution.executor=ray with generation.shard_tasks needs prefect-ray (pip install "
                         "prefect-ray)") from None
    return RayTaskRunner(address=ex.ray_address)


# ---- prefect.yaml -> validated specs --------------------------------------------------------------------------
@dataclass
class DeploymentSpec:
    name: str
    pipeline: str
    config: dict[str, Any]  # the validated config, every key (mode="json")
    work_pool: str
    job_variables: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)  # {cron|interval, timezone, active}
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    pull_steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{ENTRY_FLOW}/{self.name}"

    def parameters(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "config": self.config}


def load_prefect_file(path: str | Path = PREFECT_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DeployError(f"{path}: no such file (the deployments are declared in prefect.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DeployError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
        raise DeployError(f"{path}: expected a mapping with a 'deployments' list")
    return data


def gpu_job_variables(config: dict[str, Any], gpus: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(job variables, config) for a deployment of `gpus` GPUs: CUDA_VISIBLE_DEVICES for the flow run process,
    and, when the config names no `generation.device_groups`, one engine per GPU group (groups of the vLLM
    backend's tensor_parallel_size GPUs; vLLM's own tensor parallelism stays inside each engine)."""
    from generators.stage import gpu_groups

    gen = config.get("generation")
    if gpus > 1 and isinstance(gen, dict) and not gen.get("device_groups"):
        backend = gen.get("backend") or {}
        tp = int(backend.get("tensor_parallel_size") or 1) if backend.get("kind") == "vllm" else 1
        engines = gpus // tp
        if engines < 1:
            raise ValueError(f"generation.backend.tensor_parallel_size={tp} needs more than the {gpus} GPU(s)")
        if engines > 1 and not int(backend.get("data_parallel_size") or 1) > 1:
            config = {**config, "generation": {**gen, "device_groups": gpu_groups(engines, tp),
                                               "workers": max(int(gen.get("workers") or 1), engines)}}
    return {"gpus": gpus, "env": {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in range(gpus))}}, config


def _check_schedule(s: Any, where: str) -> dict[str, Any]:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    if not isinstance(s, dict) or not ({"cron", "interval"} & set(s)):
        raise DeployError(f"{where}: a schedule is a mapping with 'cron' (and optional 'timezone', 'active') or "
                          f"'interval' (seconds)")
    unknown = set(s) - {"cron", "interval", "timezone", "active", "anchor_date"}
    if unknown:
        raise DeployError(f"{where}: unknown schedule key(s) {sorted(unknown)}")
    try:
        if "cron" in s:
            CronSchedule(cron=str(s["cron"]), timezone=s.get("timezone") or "UTC")
        else:
            IntervalSchedule(interval=float(s["interval"]))
    except (ValidationError, ValueError, TypeError) as e:
        msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise DeployError(f"{where}: {msg} (got {s.get('cron', s.get('interval'))!r})") from None
    return dict(s)


def deployment_specs(path: str | Path = PREFECT_FILE, names: list[str] | None = None, *,
                     sets: list[str] | None = None, config_file: str | None = None, gpus: int | None = None,
                     workdir: str | Path | None = None) -> list[DeploymentSpec]:
    """The deployments of `path` named in `names` (None: all), each config validated by its pipeline's model
    (`sets` / `config_file` on top, for a single deployment). Raises DeployError/ConfigError with one line."""
    path = Path(path)
    data = load_prefect_file(path)
    declared = {}
    for i, d in enumerate(data["deployments"]):
        if not isinstance(d, dict) or not d.get("name"):
            raise DeployError(f"{path}: deployments[{i}] needs a 'name'")
        declared[str(d["name"])] = d
    wanted = list(declared) if names is None else list(names)
    missing = [n for n in wanted if n not in declared]
    if missing:
        known = ", ".join(declared)
        hint = f"; '{missing[0]}' is a pipeline, add a deployment for it" if missing[0] in PIPELINES else ""
        raise DeployError(f"{path}: no deployment named '{missing[0]}' (declared: {known}){hint}")
    if (sets or config_file) and len(wanted) != 1:
        raise DeployError("--set/--config apply to one deployment: name exactly one")
    pull = data.get("pull") or [{"prefect.deployments.steps.set_working_directory": {
        "directory": str(Path(workdir).resolve() if workdir else path.resolve().parent)}}]
    specs = []
    for name in wanted:
        d = declared[name]
        where = f"{path}: deployment '{name}'"
        if d.get("entrypoint", ENTRYPOINT) != ENTRYPOINT:
            raise DeployError(f"{where}: entrypoint must be {ENTRYPOINT} (the config travels as a validated dict)")
        params = d.get("parameters") or {}
        pipeline = params.get("pipeline")
        try:
            get_pipeline(str(pipeline))
        except UnknownPipeline as e:
            raise DeployError(f"{where}: parameters.pipeline: {e.args[0]}") from None
        raw = params.get("config") or {}
        if not isinstance(raw, dict):
            raise DeployError(f"{where}: parameters.config must be a mapping of config keys")
        if config_file:
            cpath = Path(config_file)
            if not cpath.is_file():
                raise ConfigError(f"{config_file}: config file does not exist")
            loaded = yaml.safe_load(cpath.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{config_file}: expected a mapping of config keys at the top level")
            raw = _deep_merge(raw, loaded)
        raw = _apply_sets(raw, sets or [])
        cfg = validate_config(pipeline, raw, f"{where}: ").model_dump(mode="json")
        pool = d.get("work_pool") or {}
        pool_name = pool.get("name") if isinstance(pool, dict) else None
        if pool_name not in POOLS:
            raise DeployError(f"{where}: work_pool.name must be one of {', '.join(POOLS)} (got {pool_name!r})")
        job_vars = dict(pool.get("job_variables") or {})
        if pool_name == "gpu":
            n = gpus if gpus is not None else job_vars.get("gpus", 1)
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise DeployError(f"{where}: work_pool.job_variables.gpus must be an integer >= 0 (got {n!r})")
            try:
                gpu_vars, cfg = gpu_job_variables(cfg, n)
            except ValueError as e:
                raise DeployError(f"{where}: {e}") from None
            env = {**gpu_vars["env"], **(job_vars.get("env") or {})}
            job_vars = {**job_vars, **gpu_vars, "env": env}
            cfg = validate_config(pipeline, cfg, f"{where}: ").model_dump(mode="json")
        elif gpus is not None and len(wanted) == 1:
            raise DeployError(f"{where}: --gpus is for deployments of the gpu pool (this one is in {pool_name})")
        schedules = [_check_schedule(s, f"{where}: schedules[{k}]") for k, s in enumerate(d.get("schedules") or [])]
        specs.append(DeploymentSpec(name=name, pipeline=pipeline, config=cfg, work_pool=pool_name,
                                    job_variables=job_vars, schedules=schedules, tags=list(d.get("tags") or []),
                                    description=d.get("description"), pull_steps=list(pull)))
    return specs


def _apply_sets(raw: dict, sets: list[str]) -> dict:
    import copy

    out = copy.deepcopy(raw)
    for item in sets:
        key, value = parse_set(item)
        _set_dotted(out, key, value)
    return out


# ---- registering --------------------------------------------------------------------------------------------
async def ensure_pools(client, names: set[str]) -> list[str]:
    """Create the process work pools that are missing; returns the ones created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    created = []
    for name in sorted(names):
        try:
            await client.read_work_pool(name)
            continue
        except ObjectNotFound:
            pass
        template = ProcessWorker.get_default_base_job_template()
        if name == "gpu":
            template["variables"]["properties"]["gpus"] = dict(GPUS_VARIABLE)
        await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template,
                                                     description=POOLS.get(name)))
        created.append(name)
    return created


async def apply_specs(specs: list[DeploymentSpec]) -> list[tuple[DeploymentSpec, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.utilities.callables import parameter_schema

    out = []
    async with get_client() as client:
        await ensure_pools(client, {s.work_pool for s in specs})
        flow_id = await client.create_flow_from_name(ENTRY_FLOW)
        schema = parameter_schema(pipeline_flow.fn).model_dump_for_openapi()
        for s in specs:
            schedules = [DeploymentScheduleCreate(
                schedule=(CronSchedule(cron=str(x["cron"]), timezone=x.get("timezone") or "UTC") if "cron" in x
                          else IntervalSchedule(interval=float(x["interval"]),
                                                **({"anchor_date": x["anchor_date"]} if "anchor_date" in x else {}))),
                active=bool(x.get("active", True))) for x in s.schedules]
            dep_id = await client.create_deployment(
                flow_id=flow_id, name=s.name, entrypoint=ENTRYPOINT, parameters=s.parameters(),
                work_pool_name=s.work_pool, job_variables=s.job_variables, schedules=schedules, tags=s.tags,
                description=s.description, pull_steps=s.pull_steps, parameter_openapi_schema=schema,
                enforce_parameter_schema=True, path=str(PROJECT_DIR))
            out.append((s, str(dep_id)))
    return out


def deploy(specs: list[DeploymentSpec]) -> list[tuple[DeploymentSpec, str]]:
    return asyncio.run(apply_specs(specs))


# ---- triggering ---------------------------------------------------------------------------------------------
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class TriggeredRun:
    flow_run_id: str
    name: str
    state: str
    message: str | None
    config: dict[str, Any]


def trigger_config(stored: dict[str, Any], pipeline: str, *, config_file: str | None = None,
                   inputs: list[str] | None = None, output: str | None = None, sets: list[str] | None = None
                   ) -> dict[str, Any]:
    """The deployment's stored config with these overrides on top, validated here by the pipeline's model."""
    raw = dict(stored or {})
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"{config_file}: config file does not exist")
        raw = _deep_merge(raw, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    if inputs:
        raw["inputs"] = list(inputs)
    if output:
        raw["output"] = output
    raw = _apply_sets(raw, sets or [])
    return validate_config(pipeline, raw).model_dump(mode="json")


class NoWorker(DeployError):
    """No worker polls the deployment's work pool: a run would wait (Scheduled, then Late) for nothing."""


# Prefect's foreman marks a worker OFFLINE after `heartbeat_interval_seconds` x 3 without a heartbeat
# (PREFECT_API_SERVICES_FOREMAN_INACTIVITY_HEARTBEAT_MULTIPLE); the same rule here, in case that service is late
HEARTBEAT_MULTIPLE = 3
DEFAULT_HEARTBEAT_S = 30  # PREFECT_WORKER_HEARTBEAT_SECONDS


def live_workers(workers: list, now=None) -> list:
    """The workers that poll a pool now: status ONLINE and a heartbeat within 3 heartbeat intervals."""
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    out = []
    for w in workers:
        status = getattr(w.status, "value", w.status)
        hb = w.last_heartbeat_time
        if status != "ONLINE" or hb is None:
            continue
        hb = hb if hb.tzinfo else hb.replace(tzinfo=timezone.utc)
        limit = HEARTBEAT_MULTIPLE * (w.heartbeat_interval_seconds or DEFAULT_HEARTBEAT_S)
        if (now - hb).total_seconds() <= limit:
            out.append(w)
    return out


def worker_command(pool: str, api_url: str | None) -> str:
    return (f"PREFECT_API_URL={api_url} " if api_url else "") + f"prefect worker start --pool {pool}"


async def check_worker(client, pool: str) -> None:
    """Raise NoWorker (one line: the pool, and the exact command that starts a worker for it) when no worker
    polls `pool` now or the pool is paused."""
    from prefect.exceptions import ObjectNotFound

    url = str(getattr(client, "api_url", "") or "").rstrip("/") or None
    try:
        wp = await client.read_work_pool(pool)
    except ObjectNotFound:
        raise NoWorker(f"work pool '{pool}' does not exist on the server: `flows deploy` creates it, then start a "
                       f"worker with `{worker_command(pool, url)}`") from None
    if wp.is_paused:
        raise NoWorker(f"work pool '{pool}' is paused: resume it with `prefect work-pool resume {pool}`")
    if not live_workers(await client.read_workers_for_work_pool(pool)):
        raise NoWorker(f"no worker polls pool '{pool}': start one with `{worker_command(pool, url)}` "
                       f"(no run was created)")


async def _trigger(name: str, pipeline: str, overrides: dict, on_state: Callable[[str, str | None], None],
                   poll_s: float, timeout_s: float | None, require_worker: bool = True) -> TriggeredRun:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            dep = await client.read_deployment_by_name(f"{ENTRY_FLOW}/{name}")
        except ObjectNotFound:
            raise DeployError(f"no deployment '{ENTRY_FLOW}/{name}' on the server (flows deploy {name})") from None
        params = dict(dep.parameters or {})
        if params.get("pipeline") != pipeline:
            raise DeployError(f"deployment '{ENTRY_FLOW}/{name}' runs pipeline {params.get('pipeline')!r}, "
                              f"not {pipeline!r}")
        config = trigger_config(params.get("config") or {}, pipeline, **overrides)
        if require_worker and dep.work_pool_name:
            await check_worker(client, dep.work_pool_name)
        run = await client.create_flow_run_from_deployment(dep.id, parameters={"pipeline": pipeline,
                                                                               "config": config})
        last, t0 = None, time.monotonic()
        while True:
            fr = await client.read_flow_run(run.id)
            state = fr.state.type.value if fr.state else "PENDING"
            shown = fr.state.name if fr.state else state
            if shown != last:
                on_state(shown, fr.state.message if fr.state else None)
                last = shown
            if state in FINAL:
                return TriggeredRun(str(run.id), fr.name, state, fr.state.message, config)
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                return TriggeredRun(str(run.id), fr.name, state, "timed out waiting", config)
            await asyncio.sleep(poll_s)


def trigger(pipeline: str, *, name: str | None = None, on_state: Callable[[str, str | None], None] = print,
            poll_s: float = 1.0, timeout_s: float | None = None, require_worker: bool = True,
            **overrides) -> TriggeredRun:
    """Start deployment `pipeline/<name or pipeline>` with `overrides` (config_file, inputs, output, sets) merged
    over its stored config, and follow its state until final (Completed, Failed, Crashed, Cancelled).
    `require_worker`: first check that a worker polls the deployment's pool (NoWorker at once, no run created)."""
    return asyncio.run(_trigger(name or pipeline, pipeline, overrides, on_state, poll_s, timeout_s,
                                require_worker))
