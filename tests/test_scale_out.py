"""Scale-out on the existing engines: the same `dolma` run through datatrove's Ray executor (local Ray, 2 workers)
and the local one gives identical rows; generation shards as Prefect tasks on prefect-ray's RayTaskRunner give
the rows of the local stage (replay backend); dating through the executor; the Slurm sbatch script's content.

Against a real local Prefect server (free port, own PREFECT_HOME): in ephemeral mode every Ray worker would start
its own temporary server. Ray and the server are stopped by the module fixture's finalizer."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.execution import ExecutorConfig, sbatch_script
from test_server import api, needs_prefect_cli, server


# ---- Slurm: the script datatrove would submit (no cluster here) -------------------------------------------------
def test_sbatch_script_content(tmp_path):
    from datatrove.pipeline.readers import JsonlReader

    cfg = ExecutorConfig(executor="slurm", workers=4, partition="cpu-long", time="02:00:00", cpus_per_task=8,
                         mem_per_cpu_gb=4, qos="high", job_name="dolma-filter", venv_path="/opt/flows/.venv/bin/activate",
                         sbatch_args={"account": "llm-data"})
    script = sbatch_script([JsonlReader(str(tmp_path))], tasks=10, cfg=cfg, logging_dir=str(tmp_path / "logs"))
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [ln for ln in lines if ln.startswith("#SBATCH")]
    for d in ("--partition=cpu-long", "--array=0-9%4", "--cpus-per-task=8", "--mem-per-cpu=4G", "--time=02:00:00",
              "--qos=high", "--job-name=dolma-filter", "--account=llm-data", "--nodes=1"):
        assert f"#SBATCH {d}" in directives, (d, directives)
    assert not any("--gpus" in d for d in directives)
    assert "source /opt/flows/.venv/bin/activate" in script
    assert f"launch_pickled_pipeline {tmp_path / 'logs'}/executor.pik" in script and "srun" in script
    # GPUs per task, an env command instead of the venv, fewer tasks than the array limit
    gpu = cfg.model_copy(update={"gpus_per_task": 2, "env_command": "module load cuda/12", "workers": 1})
    script = sbatch_script([JsonlReader(str(tmp_path))], tasks=3, cfg=gpu, logging_dir=str(tmp_path / "logs2"))
    assert "#SBATCH --gpus=2" in script and "#SBATCH --array=0-2%1" in script
    assert "module load cuda/12" in script and "source /opt" not in script
    with pytest.raises(ValueError, match="execution.partition: required for execution.executor=slurm"):
        sbatch_script([], tasks=1, cfg=ExecutorConfig(executor="slurm"), logging_dir=str(tmp_path))


# ---- Ray ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Prefect server and a local Ray of 2 CPUs whose workers talk to it; both always stopped."""
    ray = pytest.importorskip("ray", reason="ray not installed (pip install ray)")
    pytest.importorskip("prefect_ray", reason="prefect-ray not installed (pip install prefect-ray)")
    base = tmp_path_factory.mktemp("scale_out")
    with server(base / "server") as state:
        old = {k: os.environ.get(k) for k in ("PREFECT_API_URL",)}
        os.environ["PREFECT_API_URL"] = state["url"]
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PREFECT_API_URL": state["url"],
                                               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}})
            with api(state["url"]):
                yield {"url": state["url"], "base": base}
        finally:
            ray.shutdown()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _rows(out: Path, kind: str) -> list[tuple]:
    rows = [r for f in sorted((out / kind).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return [(r["id"], hashlib.sha256((r.get("text") or "").encode()).hexdigest(), r.get("reason")) for r in rows]


@needs_prefect_cli
def test_dolma_on_ray_gives_the_rows_of_the_local_executor(ray_cluster):
    from corpora.sample import sample_corpus_path
    from flows.dolma import DolmaConfig, dolma_flow

    base = ray_cluster["base"]
    lines = sample_corpus_path().read_text(encoding="utf-8").splitlines()[:60]
    inputs = []
    for k in range(3):  # three input files: three filter tasks over the two Ray workers
        f = base / f"in{k}.jsonl"
        f.write_text("\n".join(lines[k::3]) + "\n", encoding="utf-8")
        inputs.append(str(f))
    # url + exact dedup only (every further dedup pass is one more Ray job of actors: minutes on 2 cores)
    quick = {"paragraph": {"enabled": False}, "minhash": {"enabled": False}}
    local = dolma_flow(DolmaConfig(inputs=inputs, output=str(base / "local"), dedup=quick))
    on_ray = dolma_flow(DolmaConfig(inputs=inputs, output=str(base / "ray"), dedup=quick,
                                    execution=ExecutorConfig(executor="ray", workers=2)))
    for kind in ("data", "rejected"):
        assert _rows(base / "ray", kind) == _rows(base / "local", kind), kind
    assert len(_rows(base / "ray", "data")) + len(_rows(base / "ray", "rejected")) == 60
    assert local["stats"]["invariant"] == on_ray["stats"]["invariant"]
    # the filter and dedup tasks really went through datatrove's Ray executor
    ray_logs = [p for p in (base / "ray").rglob("executor.json") if "ray_remote_kwargs" in p.read_text()]
    assert ray_logs and not any("ray_remote_kwargs" in p.read_text() for p in (base / "local").rglob("executor.json"))


@needs_prefect_cli
def test_generation_shards_on_ray_task_runner_match_the_local_stage(ray_cluster):
    from prefect import flow
    from prefect_ray import RayTaskRunner

    from flows.generation import shards_as_tasks
    from generators.backends import ReplayConfig
    from generators.backends.base import GenerationRequest, SamplingParams
    from generators.settings import GenerationSettings
    from generators.stage import load_results, run_generation

    base = ray_cluster["base"]
    requests = [GenerationRequest(id=f"q{i:02d}", prompt=f"Write about topic {i}.", template_id="t@1",
                                  sampling=SamplingParams(max_tokens=16, seed=i), parent_ids=[f"seed{i}"])
                for i in range(10)]
    replay = base / "answers.jsonl"
    replay.write_text("".join(json.dumps({"request_id": r.id, "text": f"answer {r.id}: " + "x" * (i + 1),
                                          "model": "replay-model"}) + "\n" for i, r in enumerate(requests)))
    bcfg = ReplayConfig(path=str(replay))
    settings = GenerationSettings(backend=bcfg, shard_size=3, shard_tasks=True)

    local = run_generation(requests, bcfg, base / "stage_local", shard_size=3, progress=False)

    @flow(name="ray-shards", task_runner=RayTaskRunner())
    def on_ray():
        return shards_as_tasks(requests, bcfg, base / "stage_ray", settings)

    report = on_ray()
    assert (report.requests, report.generated, report.failed) == (10, 10, 0) == (local.requests, local.generated,
                                                                                 local.failed)
    assert report.parts_written == 4  # 3 + 3 + 3 + 1: one part per shard task

    def rows(store):
        t = load_results(store, requests, bcfg).to_pylist()
        return [(r["request_id"], r["completion_index"], r["text"], r["model"], r["sampling_params"], r["cache_key"],
                 r["status"]) for r in t]

    assert rows(base / "stage_ray") == rows(base / "stage_local")
    assert [r[0] for r in rows(base / "stage_ray")] == [r.id for r in requests]
    # the parts were written by Ray worker processes: the stage's loop finds every key cached
    again = run_generation(requests, bcfg, base / "stage_ray", shard_size=3, progress=False)
    assert (again.cached, again.generated) == (10, 0)


@needs_prefect_cli
def test_dating_on_ray_gives_the_works_of_the_local_executor(ray_cluster):
    from flows.diachronic import DiachronicConfig, diachronic_flow
    from test_diachronic_flow import gutenberg_book

    base = ray_cluster["base"]
    books = base / "books"
    books.mkdir()
    for n, (title, front) in enumerate([("The Old Mill", "LONDON\nJOHN MURRAY\n1855."),
                                        ("The New Mill", "Copyright, 1912, by Jane Doe"),
                                        ("A Third Mill", "First published 1914")]):
        (books / f"{101 + n}.txt").write_text(gutenberg_book(101 + n, title, "Jane Doe", f"{title.upper()}\n\n{front}"),
                                              encoding="utf-8")
    authors = base / "authors.csv"
    authors.write_text("author,birthdate,deathdate\n\"Doe, Jane\",1820,1915\n", encoding="utf-8")
    common = dict(inputs=[str(books)], authors={"path": str(authors)},
                  slicing={"budgets": {"train": 300, "dev": 40, "test": 150}})
    local = diachronic_flow(DiachronicConfig(output=str(base / "dated-local"), **common))
    on_ray = diachronic_flow(DiachronicConfig(output=str(base / "dated-ray"), **common,
                                              execution=ExecutorConfig(executor="ray", workers=2)))

    def table(out: Path, kind: str) -> list[dict]:
        return [r for f in sorted((out / kind).rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]

    works = table(base / "dated-ray", "works")
    assert works == table(base / "dated-local", "works") and len(works) == 3
    assert {w["year"] for w in works} == {1855, 1912, 1914}
    assert table(base / "dated-ray", "slices") == table(base / "dated-local", "slices")
    assert local["stats"]["invariant"] == on_ray["stats"]["invariant"]
    assert any("ray_remote_kwargs" in p.read_text() for p in (base / "dated-ray").rglob("executor.json"))
