"""One id policy (issue 24): id files read whole lines, duplicate ids renamed `<id>#n` everywhere (original id in
`metadata.original_id`, counted as `duplicate_ids_renamed`), `remove` / unlearning-split follow it, the input kind
of unlearning-split is decided from the whole file, and ids that name nothing are said on the console (`strict`:
an error)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from corpora.staging import rename_duplicate_ids, rename_duplicate_ids_table
from filters import forget_split as fs
from filters import removal as rm
from filters.forget_match import MatchSpec, NearDupConfig, match_rows, read_id_list
from flows.cli import app

OFF = NearDupConfig(enabled=False)


# ---- 1. the id file: every non-blank line whole --------------------------------------------------------------
def test_id_file_lines_are_taken_whole(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_bytes("\ufeffg-0#2\r\n\r\n# a comment line\r\nhttps://x.org/page#frag\n  \n#nospace\n d 1 \n"
                  .encode("utf-8"))
    assert read_id_list(p) == ["g-0#2", "https://x.org/page#frag", "#nospace", "d 1"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert read_id_list(empty) == []


# ---- 2. / 6. duplicate ids: every row an id names ------------------------------------------------------------
def test_every_row_with_a_duplicated_id_is_matched_and_removed():
    t = pa.table({"id": ["a", "b", "a", "a"], "text": ["one", "two", "three", "four"]})
    rules, stats = match_rows(t, MatchSpec(ids=["a"]))
    assert rules == ["ids", None, "ids", "ids"] and stats["rows_by_rule"] == {"ids": 3}
    hits, _ = rm.match_dataset({"data": t}, MatchSpec(ids=["a"]), OFF)
    kept, tomb = rm.split_kind(t, hits[""]["data"], "data", "c@v2")
    assert kept.column("id").to_pylist() == ["b"] and tomb.column("id").to_pylist() == ["a", "a", "a"]


def test_renamed_ids_follow_the_policy():
    meta = [None, json.dumps({"original_id": "g-0"}), json.dumps({"original_id": "g-0", "k": 1}), None]
    t = pa.table({"id": ["g-0", "g-0#2", "g-0#3", "h"], "text": ["a", "b", "c", "d"], "metadata": meta})
    rules, stats = match_rows(t, MatchSpec(ids=["g-0#2"]))
    assert rules == [None, "ids", None, None] and not stats["unmatched"]  # exactly that row
    rules, _ = match_rows(t, MatchSpec(ids=["g-0"]))  # the original id: the row and every row renamed from it
    assert rules == ["ids", "ids:original_id", "ids:original_id", None]
    hits, _ = rm.match_dataset({"data": t}, MatchSpec(ids=["g-0"]), OFF)
    _, tomb = rm.split_kind(t, hits[""]["data"], "data", "c@v2")
    assert tomb.column("id").to_pylist() == ["g-0", "g-0#2", "g-0#3"]
    assert tomb.column("rule").to_pylist() == ["ids", "ids:original_id", "ids:original_id"]


def test_the_reusable_rename():
    ids, metas, n = rename_duplicate_ids(["a", "b", "a", "a", "a#2"], [None, None, '{"x": 1}', {"y": 2}, None])
    assert ids == ["a", "b", "a#2", "a#3", "a#2#2"] and n == 3
    assert metas[0] is None and json.loads(metas[2]) == {"x": 1, "original_id": "a"}
    assert metas[3] == {"y": 2, "original_id": "a"} and json.loads(metas[4]) == {"original_id": "a#2"}
    taken = {"a"}
    assert rename_duplicate_ids(["a"], taken=taken)[0] == ["a#2"] and taken == {"a", "a#2"}
    t, n = rename_duplicate_ids_table(pa.table({"id": ["x", "x"], "text": ["1", "2"]}))
    assert n == 1 and t.column("id").to_pylist() == ["x", "x#2"]
    assert [None if m is None else json.loads(m) for m in t.column("metadata").to_pylist()] == [
        None, {"original_id": "x"}]
    same, n = rename_duplicate_ids_table(pa.table({"id": ["x", "y"]}))
    assert n == 0 and same.column_names == ["id"]


def test_unlearning_split_renames_duplicate_ids(tmp_path):
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n{"id": "y", "text": "three"}\n')
    c = fs.read_documents([dup])
    assert c.table.column("id").to_pylist() == ["x", "x#2", "y"] and c.duplicate_ids_renamed == 1
    assert json.loads(c.table.column("metadata")[1].as_py())["original_id"] == "x"
    pq.write_table(pa.table({"id": ["p", "p"], "text": ["a", "b"]}), tmp_path / "d.parquet")
    c = fs.read_documents([tmp_path / "d.parquet"])
    assert c.table.column("id").to_pylist() == ["p", "p#2"] and c.duplicate_ids_renamed == 1
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps([{"id": "q", "question": "Q?", "answer": "A."}, {"id": "q", "question": "R?",
                                                                            "answer": "B."}]))
    c = fs.read_qa([qa])
    assert c.table.column("id").to_pylist() == ["q", "q#2"] and c.duplicate_ids_renamed == 1
    res = fs.assign_splits(c, fs.ForgetSpec(ids=["q#2"]), near_dup=OFF)
    assert res.table.column("split").to_pylist()[1] == "forget" and res.table.column("split")[0].as_py() != "forget"


def test_generator_seeds_with_duplicate_ids_are_renamed(tmp_path, prefect_harness):
    from flows.generation import load_seeds
    from generators.textbooks import Seed, unique_seed_ids

    p = tmp_path / "seeds.jsonl"
    p.write_text('{"id": "s", "text": "first seed"}\n{"id": "s", "text": "second seed"}\n')

    class Cfg:
        text_field, id_field = "text", "id"

    seeds, bad, per_input = load_seeds.fn([str(p)], Cfg())
    assert [s.id for s in seeds] == ["s", "s#2"] and seeds[1].metadata["original_id"] == "s"
    assert per_input[0]["duplicate_ids_renamed"] == 1 and not bad
    got, n = unique_seed_ids([Seed("w", "web", "x", None), Seed("w", "topic_list", None, "t")])
    assert [s.id for s in got] == ["w", "w#2"] and n == 1


# ---- 3. the input kind from the whole file -------------------------------------------------------------------
def test_qa_kind_is_decided_from_the_whole_file(tmp_path):
    qa = tmp_path / "tofu.json"
    qa.write_text(json.dumps([{"question": "Q0?"}] + [{"question": f"Q{i}?", "answer": f"A{i}."}
                                                      for i in range(1, 4)]))
    assert fs.detect_kind([qa]) == "qa"
    c = fs.read_qa([qa])
    assert c.table.num_rows == 3 and c.quarantine[0]["location"] == "item 0"
    assert "'answer'" in c.quarantine[0]["error"]
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "question": "Q?", "answer": "A."}\n' + "".join(
        json.dumps({"id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(3)))
    assert fs.detect_kind([docs]) == "documents"


# ---- 5. ids that name nothing: said on the console, an error with strict -------------------------------------
@pytest.fixture()
def small_corpus(tmp_path):
    corpus = tmp_path / "c"
    (corpus / "data").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["g-0", "g-1"], "text": ["alpha beta", "gamma delta"]}),
                   corpus / "data" / "part-00000.parquet")
    return corpus


def test_remove_says_unmatched_ids_and_strict_refuses(tmp_path, small_corpus, prefect_harness):
    runner = CliRunner()
    ids = tmp_path / "ids.txt"
    ids.write_text("g-0\nnope\n")
    r = runner.invoke(app, ["run", "remove", "--corpus", str(small_corpus), "--ids", str(ids),
                            "--output", str(tmp_path / "v2")])
    assert r.exit_code == 0, r.output
    assert "1 of 2 ids named no row" in r.output and "nope" in r.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    r = runner.invoke(app, ["run", "remove", "--corpus", str(small_corpus), "--ids", str(empty),
                            "--output", str(tmp_path / "v3")])
    assert r.exit_code == 0 and "holds no ids" in r.output
    r = runner.invoke(app, ["run", "remove", "--corpus", str(small_corpus), "--ids", str(ids),
                            "--output", str(tmp_path / "v4"), "--set", "strict=true"])
    assert r.exit_code == 2 and "1 of 2 ids named no row" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "v4" / "data").exists()


def test_unlearning_split_says_unmatched_ids_and_strict_refuses(tmp_path, prefect_harness):
    runner = CliRunner()
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "some text"}\n{"id": "b", "text": "other words"}\n')
    r = runner.invoke(app, ["run", "unlearning-split", "--input", str(docs), "--set", "forget.ids=[zzz]",
                            "--output", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "1 of 1 ids named no row" in r.output
    r = runner.invoke(app, ["run", "unlearning-split", "--input", str(docs), "--set", "forget.ids=[zzz]",
                            "--set", "strict=true", "--output", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "1 of 1 ids named no row" in r.output and len(r.output.strip().splitlines()) == 1


def test_dedup_renames_duplicate_ids_across_inputs(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.dedup import DedupFlowConfig, dedup_flow

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jsonl").write_text('{"id": "d0", "text": "the first text about rivers"}\n'
                                 '{"id": "d1", "text": "a second text about mountains"}\n')
    (inp / "b.jsonl").write_text('{"id": "d0", "text": "a third text about deserts and dunes"}\n')
    pq.write_table(pa.table({"id": ["d1", "e"], "text": ["fourth text on glaciers", "fifth text on reefs"]}),
                   inp / "c.parquet")
    out = tmp_path / "out"
    res = dedup_flow(load_config(DedupFlowConfig, inputs=[str(inp)], output=str(out)))
    got = [r for f in sorted((out / "data").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(r["id"] for r in got) == ["d0", "d0#2", "d1", "d1#2", "e"]
    by_id = {r["id"]: r for r in got}
    assert json.loads(by_id["d0#2"]["metadata"])["original_id"] == "d0"
    assert json.loads(by_id["d1#2"]["metadata"])["original_id"] == "d1"
    assert res["stats"]["duplicate_ids_renamed"] == 2


def test_lineage_follows_renamed_rows():
    from filters.lineage import follow_lineage

    meta = [None, json.dumps({"original_id": "g-0"}), None]
    corpus = {"data": pa.table({"id": ["g-0", "g-0#2", "h"], "text": ["a", "b", "c"], "metadata": meta})}
    derived = {"data": pa.table({"id": ["t1", "t2", "t3"], "text": ["x", "y", "z"],
                                 "parent_ids": [["g-0#2"], ["h"], ["g-0"]]})}
    hits, _ = rm.match_dataset(corpus, MatchSpec(ids=["g-0"]), OFF)
    hits, levels = follow_lineage({"": corpus, "tb": derived}, hits)
    assert sorted(hits[""]["data"]) == [0, 1] and hits["tb"]["data"] == {0: ("lineage:parent_ids", "g-0#2"),
                                                                         2: ("lineage:parent_ids", "g-0")}
    hits, _ = rm.match_dataset(corpus, MatchSpec(ids=["g-0#2"]), OFF)
    hits, _ = follow_lineage({"": corpus, "tb": derived}, hits)
    assert sorted(hits[""]["data"]) == [1] and hits["tb"]["data"] == {0: ("lineage:parent_ids", "g-0#2")}
