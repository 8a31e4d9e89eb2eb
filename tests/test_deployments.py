"""Deployments from prefect.yaml against a real local Prefect server (free port, own PREFECT_HOME) and a real
process worker of the `cpu` pool: validation before registering, a triggered deployment's output identical to an
in-process run, a scheduled deployment that fires. Server and worker are stopped by fixture finalizers."""
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from flows.config import ConfigError
from flows.deployments import PREFECT_FILE, DeployError, deploy, deployment_specs, gpu_job_variables
from test_server import ROOT, api, needs_prefect_cli, server, worker

runner = CliRunner()
QUICK = {"paragraph": {"enabled": False}, "minhash": {"enabled": False}}  # url + exact dedup: fewer executor jobs


def _write_yaml(path: Path, deployments: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"name": "t", "deployments": deployments}, sort_keys=False))
    return path


def _dep(name: str, pipeline: str = "dolma", pool: str = "cpu", config: dict | None = None, **extra) -> dict:
    return {"name": name, "entrypoint": "flows.deployments:pipeline_flow",
            "parameters": {"pipeline": pipeline, "config": config or {}}, "work_pool": {"name": pool}, **extra}


# ---- validation before registering (no server) ----------------------------------------------------------------
def test_checked_in_prefect_yaml_validates():
    specs = deployment_specs(PREFECT_FILE)
    by = {s.name: s for s in specs}
    assert {"dolma", "dedup", "diachronic", "textbooks"} <= set(by)
    assert {by[n].work_pool for n in ("dolma", "dedup", "diachronic", "quality-train")} == {"cpu"}
    assert {by[n].work_pool for n in ("textbooks", "ensemble-instruct", "impossible-distillation")} == {"gpu"}
    assert by["dolma"].schedules[0]["cron"] == "0 2 * * *"
    # the stored config is the full validated config (every key of the model)
    from flows.dolma import DolmaConfig

    assert DolmaConfig.model_validate(by["dolma"].config).model_dump(mode="json") == by["dolma"].config
    assert set(by["dolma"].config) == set(DolmaConfig.model_fields)
    assert by["textbooks"].job_variables == {"gpus": 1, "env": {"CUDA_VISIBLE_DEVICES": "0"}}


def test_bad_deployments_are_one_line_errors(tmp_path):
    f = _write_yaml(tmp_path / "p.yaml", [_dep("dolma", config={"filters": {"langid": {"treshold": 0.5}}})])
    with pytest.raises(ConfigError) as e:
        deployment_specs(f)
    assert str(e.value) == (f"{f}: deployment 'dolma': unknown config key 'filters.langid.treshold'; did you mean "
                            f"'filters.langid.threshold'?")
    f = _write_yaml(tmp_path / "p.yaml", [_dep("x", pipeline="dolmaa")])
    with pytest.raises(DeployError, match="parameters.pipeline: unknown pipeline 'dolmaa'; did you mean 'dolma'"):
        deployment_specs(f)
    f = _write_yaml(tmp_path / "p.yaml", [_dep("x", pool="tpu")])
    with pytest.raises(DeployError, match=r"work_pool.name must be one of cpu, gpu \(got 'tpu'\)"):
        deployment_specs(f)
    f = _write_yaml(tmp_path / "p.yaml", [_dep("x", schedules=[{"cron": "every day"}])])
    with pytest.raises(DeployError, match=r"deployment 'x': schedules\[0\]: .*every day"):
        deployment_specs(f)
    f = _write_yaml(tmp_path / "p.yaml", [_dep("x", config={"shard_rows": 0})])
    with pytest.raises(ConfigError, match="config key 'shard_rows': Input should be greater than or equal to 1"):
        deployment_specs(f)
    with pytest.raises(DeployError, match="no deployment named 'nope'"):
        deployment_specs(f, ["nope"])
    r = runner.invoke(__import__("flows.cli", fromlist=["app"]).app,
                      ["deploy", "dolma", "--file", str(PREFECT_FILE), "--set", "dedup.minhash.num_band=3",
                       "--dry-run"])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0
    assert "unknown config key 'dedup.minhash.num_band'; did you mean 'dedup.minhash.num_bands'?" in r.output


def test_gpu_job_variables_make_one_engine_per_gpu_group():
    cfg = {"generation": {"backend": {"kind": "vllm", "tensor_parallel_size": 2}, "workers": 1,
                          "device_groups": None}}
    jv, out = gpu_job_variables(cfg, 4)
    assert jv == {"gpus": 4, "env": {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}}
    assert out["generation"]["device_groups"] == ["0,1", "2,3"] and out["generation"]["workers"] == 2
    _, same = gpu_job_variables({"generation": {"device_groups": ["3"], "workers": 1}}, 4)
    assert same["generation"]["device_groups"] == ["3"]  # the user's groups are kept
    with pytest.raises(ValueError, match="tensor_parallel_size=8 needs more than the 4 GPU"):
        gpu_job_variables({"generation": {"backend": {"kind": "vllm", "tensor_parallel_size": 8}}}, 4)
    specs = deployment_specs(PREFECT_FILE, ["textbooks"], gpus=2)
    assert specs[0].config["generation"]["device_groups"] == ["0", "1"]
    assert specs[0].job_variables["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"


# ---- against a real server and worker ------------------------------------------------------------------------
def tiny_input(path: Path, n: int = 40) -> Path:
    from corpora.sample import sample_corpus_path

    lines = sample_corpus_path().read_text(encoding="utf-8").splitlines()[:n]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows_of(out: Path, kind: str) -> list[tuple]:
    files = sorted((out / kind).glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f, columns=["id", "text"]).to_pylist()]
    return [(r["id"], hashlib.sha256(r["text"].encode()).hexdigest()) for r in rows]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A Prefect server and a `cpu` pool process worker for this module."""
    if not Path(__import__("sys").executable).with_name("prefect").exists():
        pytest.skip("no prefect command in this environment")
    import importlib.util

    if importlib.util.find_spec("importlib_metadata") is None:
        pytest.skip("importlib_metadata not installed: Prefect 3.6's process worker imports it (pip install "
                    "importlib_metadata)")
    base = tmp_path_factory.mktemp("deployments")
    with server(base / "server") as state:
        # pools first (flows deploy creates them), then the worker that polls one
        from flows.deployments import ensure_pools

        async def pools():
            from prefect.client.orchestration import get_client

            async with get_client() as client:
                await ensure_pools(client, {"cpu", "gpu"})

        with api(state["url"]):
            asyncio.run(pools())
        with worker("cpu", state["url"], base / "worker_home", base / "worker.log") as proc:
            with api(state["url"]):
                wait_for_worker("cpu", base / "worker.log")
            yield {"url": state["url"], "base": base, "worker": proc, "log": base / "worker.log"}


def wait_for_worker(pool: str, log: Path, timeout_s: float = 120) -> None:
    """Until the worker's first heartbeat reached the server (`flows run --deployment` refuses a pool without)."""
    from prefect.client.orchestration import get_client

    from flows.deployments import live_workers

    async def poll() -> bool:
        async with get_client() as client:
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout_s:
                if live_workers(await client.read_workers_for_work_pool(pool)):
                    return True
                await asyncio.sleep(0.5)
        return False

    assert asyncio.run(poll()), f"no {pool} worker heartbeat in {timeout_s} s: " + log.read_text()[-2000:]


def _deploy_cli(url: str, monkeypatch, *args) -> str:
    from flows.cli import app

    monkeypatch.setenv("PREFECT_API_URL", url)
    r = runner.invoke(app, ["deploy", *args])
    assert r.exit_code == 0, r.output
    return r.output


@needs_prefect_cli
def test_triggered_deployment_matches_in_process_run(live, monkeypatch):
    from flows.cli import app
    from flows.dolma import DolmaConfig, dolma_flow

    base = live["base"]
    data = tiny_input(base / "tiny.jsonl")
    f = _write_yaml(base / "prefect.yaml", [_dep("dolma", config={"inputs": [str(data)], "dedup": QUICK})])
    out = _deploy_cli(live["url"], monkeypatch, "dolma", "--file", str(f), "--workdir", str(ROOT))
    assert "registered pipeline/dolma" in out and "prefect worker start --pool cpu" in out

    t0 = time.perf_counter()
    r = runner.invoke(app, ["run", "dolma", "--deployment", "--output", str(base / "deployed")])
    deployed_s = time.perf_counter() - t0
    assert r.exit_code == 0, r.output + live["log"].read_text()[-3000:]
    assert "flow run: Running" in r.output and "COMPLETED" in r.output
    assert json.loads((base / "deployed" / "manifest.json").read_text())["status"] == "complete"

    t0 = time.perf_counter()
    with api(live["url"]):
        dolma_flow(DolmaConfig(inputs=[str(data)], output=str(base / "inprocess"), dedup=QUICK))
    print(f"\ndeployment run {deployed_s:.1f} s (worker start of the flow run included), in-process "
          f"{time.perf_counter() - t0:.1f} s")
    for kind in ("data", "rejected", "quarantine"):
        if kind == "quarantine":
            assert len(list((base / "deployed" / kind).glob("*.parquet"))) == len(
                list((base / "inprocess" / kind).glob("*.parquet")))
            continue
        assert rows_of(base / "deployed", kind) == rows_of(base / "inprocess", kind)
    assert rows_of(base / "deployed", "data")  # something was kept
    m1 = json.loads((base / "deployed" / "manifest.json").read_text())
    m2 = json.loads((base / "inprocess" / "manifest.json").read_text())
    assert m1["config_hash"] == m2["config_hash"]

    # an override the model refuses never reaches the server: one line, exit 2
    r = runner.invoke(app, ["run", "dolma", "--deployment", "--set", "filters.langid.treshold=0.1"])
    assert r.exit_code == 2 and "unknown config key 'filters.langid.treshold'" in r.output


@needs_prefect_cli
def test_scheduled_deployment_fires(live):
    from flows.server_cli import scheduler_problem

    if scheduler_problem():
        pytest.skip(scheduler_problem())
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    base = live["base"]
    data = tiny_input(base / "tiny2.jsonl", 20)
    out_dir = base / "scheduled"
    from datetime import datetime, timedelta, timezone

    # hourly, anchored 25 s from now: one run fires here (the next one would be an hour later)
    anchor = (datetime.now(timezone.utc) + timedelta(seconds=25)).isoformat()
    f = _write_yaml(base / "prefect-scheduled.yaml", [
        _dep("dolma-hourly", config={"inputs": [str(data)], "output": str(out_dir), "dedup": QUICK},
             schedules=[{"interval": 3600, "anchor_date": anchor}]),
        _dep("dolma-nightly", config={"inputs": [str(data)]}, schedules=[{"cron": "30 2 * * *",
                                                                           "timezone": "Europe/Berlin"}])])
    with api(live["url"]):
        deploy(deployment_specs(f, workdir=ROOT))

    async def watch() -> tuple[list, dict]:
        async with get_client() as client:
            dep = await client.read_deployment_by_name("pipeline/dolma-hourly")
            nightly = await client.read_deployment_by_name("pipeline/dolma-nightly")
            cron = [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules]
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 150:
                    runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
                        id=DeploymentFilterId(any_=[dep.id])))
                    done = [r for r in runs if r.state and r.state.is_final()]
                    if done:
                        return done, {"cron": cron, "auto": [r.auto_scheduled for r in done],
                                      "expected": [r.expected_start_time for r in done],
                                      "states": [r.state.type.value for r in done]}
                    await asyncio.sleep(2)
                return [], {"cron": cron}
            finally:
                await client.delete_deployment(dep.id)  # no further runs
                await client.delete_deployment(nightly.id)

    with api(live["url"]):
        done, info = asyncio.run(watch())
    assert info["cron"] == [("30 2 * * *", "Europe/Berlin", True)]
    assert done, "the schedule did not fire within 150 s; worker log: " + live["log"].read_text()[-2000:]
    assert info["auto"][0] is True and info["states"][0] == "COMPLETED", info
    assert abs((info["expected"][0] - datetime.fromisoformat(anchor)).total_seconds()) < 1  # it fired on schedule
    assert json.loads((out_dir / "manifest.json").read_text())["status"] == "complete"
    assert rows_of(out_dir, "data")


def test_deployment_commands_without_a_server_are_one_line_errors(tmp_path, monkeypatch):
    from flows.cli import app
    from test_server import free_port

    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    r = runner.invoke(app, ["run", "dolma", "--deployment"])
    assert r.exit_code == 2 and "did not answer: All connection attempts failed" in r.output
    assert len(r.output.strip().splitlines()) == 1
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("FLOWS_SERVER_DIR", str(tmp_path / "no-server"))
    r = runner.invoke(app, ["run", "dolma", "--deployment"])
    assert r.exit_code == 2 and "no Prefect server: start one with `flows server start`" in r.output


def test_live_workers_need_online_and_a_recent_heartbeat():
    from datetime import datetime, timedelta, timezone
    from uuid import uuid4

    from prefect.client.schemas.objects import Worker

    from flows.deployments import live_workers

    now = datetime.now(timezone.utc)

    def w(name, status, age_s, interval=30):
        return Worker(name=name, work_pool_id=uuid4(), status=status, heartbeat_interval_seconds=interval,
                      last_heartbeat_time=None if age_s is None else now - timedelta(seconds=age_s))

    workers = [w("fresh", "ONLINE", 5), w("stale", "ONLINE", 91), w("off", "OFFLINE", 1), w("never", "ONLINE", None),
               w("slow-interval", "ONLINE", 250, interval=90)]
    assert [x.name for x in live_workers(workers, now)] == ["fresh", "slow-interval"]
    assert live_workers([], now) == []


@needs_prefect_cli
def test_deployment_without_a_worker_fails_at_once(live, monkeypatch):
    """A deployment in the `gpu` pool, which no worker of this module polls: one line naming the pool and the
    command that starts a worker, exit 2, in seconds (not a run left Scheduled until Late), and no run created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flows.cli import app

    base = live["base"]
    data = tiny_input(base / "tiny3.jsonl", 10)
    f = _write_yaml(base / "prefect-gpu.yaml", [_dep("dedup", pipeline="dedup", pool="gpu",
                                                     config={"inputs": [str(data)]})])
    _deploy_cli(live["url"], monkeypatch, "dedup", "--file", str(f), "--workdir", str(ROOT))
    t0 = time.perf_counter()
    r = runner.invoke(app, ["run", "dedup", "--deployment", "--output", str(base / "never")])
    took = time.perf_counter() - t0
    assert r.exit_code == 2, r.output
    assert r.output.strip() == (f"error: no worker polls pool 'gpu': start one with `PREFECT_API_URL={live['url']} "
                                f"prefect worker start --pool gpu` (no run was created)")
    assert took < 30, took  # no waiting for the run to turn Late
    assert not (base / "never").exists()

    async def runs_and_pause() -> int:
        async with get_client() as client:
            dep = await client.read_deployment_by_name("pipeline/dedup")
            runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(
                any_=[dep.id])))
            await client.update_work_pool("gpu", WorkPoolUpdate(is_paused=True))
            return len(runs)

    with api(live["url"]):
        assert asyncio.run(runs_and_pause()) == 0
    try:  # a paused pool (a worker would get nothing from it): said at once too
        r = runner.invoke(app, ["run", "dedup", "--deployment"])
        assert r.exit_code == 2 and r.output.strip() == ("error: work pool 'gpu' is paused: resume it with "
                                                         "`prefect work-pool resume gpu`"), r.output
    finally:
        async def resume() -> None:
            async with get_client() as client:
                await client.update_work_pool("gpu", WorkPoolUpdate(is_paused=False))

        with api(live["url"]):
            asyncio.run(resume())
