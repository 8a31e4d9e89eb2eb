"""`flows run remove`: documents and their near duplicates out of an existing output as a new version, with
tombstones, a changelog and lineage through derived datasets (web doc -> textbook row -> a row made from it).

Real runs: `flows run dedup` makes the corpus, `flows run textbooks` (replay backend, answers keyed by the request
ids its own request builder gives) makes the first derived dataset, and a table of rows generated from textbooks
(`parent_ids`) the second."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from corpora.generated import generated_schema, to_table
from corpora.readers import read_records
from corpora.sample import sample_corpus_path
from filters import removal as rm
from filters.forget_match import MatchSpec, NearDupConfig
from filters.lineage import follow_lineage
from flows.cli import app
from flows.config import load_config


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def tree_hash(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def remove(corpus: Path, *sets: str) -> dict:
    from flows.remove import RemoveConfig, remove_flow

    cfg = load_config(RemoveConfig, sets=[f"corpus={corpus}", *sets])
    return remove_flow(cfg)


@pytest.fixture(scope="module")
def lineage_world(tmp_path_factory, prefect_harness):
    """corpus (dedup output of the bundled sample) -> textbooks (replay) -> qa rows generated from textbooks."""
    from flows.dedup import DedupFlowConfig, dedup_flow
    from flows.textbooks import TextbooksConfig, textbooks_flow
    from generators.textbooks import build_requests, textbook_sampling, web_seeds

    base = tmp_path_factory.mktemp("remove")
    corpus = base / "corpus"
    dedup_flow(load_config(DedupFlowConfig, inputs=[str(sample_corpus_path())], output=str(corpus)))
    data, rejected = rows(corpus, "data"), rows(corpus, "rejected")
    # a kept document whose near duplicate the dedup run rejected: removing it must take the copy too
    dup = next(r for r in rejected if r["reason"] == "minhash")
    kept_with_copy = next(r for r in data if r["id"] == dup["dup_cluster_id"] or r["id"] == dup["reason_detail"])
    clean = [r for r in data if json.loads(r["metadata"]).get("kind") == "clean" and r["id"] != kept_with_copy["id"]]
    seeds = [kept_with_copy] + clean[:7]
    seeds_file = base / "seeds.jsonl"
    seeds_file.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "url": r["url"]}) + "\n"
                                  for r in seeds))
    records = list(read_records(seeds_file))
    requests, _ = build_requests(web_seeds(records), TextbooksConfig().mixture, textbook_sampling(64))
    replay = base / "replay.jsonl"
    replay.write_text("".join(json.dumps({
        "request_id": q.id, "model": "provider-batch", "completion_tokens": 80,
        "text": f"Students, think about lesson {k} carefully. " + next(r.text for r in records
                                                                      if r.id == q.parent_ids[0])[:600]}) + "\n"
        for k, q in enumerate(requests)))
    textbooks = base / "textbooks"
    textbooks_flow(load_config(TextbooksConfig, inputs=[str(seeds_file)], output=str(textbooks), sets=[
        "generation.backend.kind=replay", f"generation.backend.path={replay}", "cleanup.min_tokens=5",
        "dedup.minhash.enabled=false"]))
    tb = rows(textbooks, "data")
    assert len(tb) == 8, "every seed gives one textbook row"
    qa = base / "qa"  # a derived table of our own, without a manifest: a row per textbook (+ one with two parents)
    own = [{"id": f"qa-{r['id']}", "text": f"Question about {r['id']}?", "source": "qa-test",
            "parent_ids": [r["id"]], "model": "m", "round": "qa"} for r in tb]
    own.append({"id": "qa-two-parents", "text": "Compare two lessons.", "source": "qa-test",
                "parent_ids": [tb[5]["id"], tb[0]["id"]], "model": "m", "round": "qa"})
    (qa / "data").mkdir(parents=True)
    pq.write_table(to_table(own, generated_schema()), qa / "data" / "part-00000.parquet")
    return {"base": base, "corpus": corpus, "textbooks": textbooks, "qa": qa, "seeds": seeds, "dup": dup, "tb": tb}


def test_removal_follows_two_levels_of_lineage(lineage_world):
    w = lineage_world
    before = {k: tree_hash(w[k]) for k in ("corpus", "textbooks", "qa")}
    gone = [w["seeds"][0]["id"], w["seeds"][1]["id"]]
    ids = w["base"] / "ids.txt"
    ids.write_text(f"# removal request 1\n{gone[0]}\n{gone[1]}\nnot-in-corpus\n")
    result = remove(w["corpus"], f"ids={ids}", f"derived=[{w['textbooks']},{w['qa']}]")
    v2 = w["base"] / "corpus@v2"
    assert result["output"] == str(v2) and result["derived"] == ["textbooks@v2", "qa@v2"]
    # never edited in place
    assert {k: tree_hash(w[k]) for k in ("corpus", "textbooks", "qa")} == before
    # level 0: the documents, and the rejected near duplicate of the first
    left = {r["id"] for r in rows(v2, "data") + rows(v2, "rejected")}
    assert not left & {*gone, w["dup"]["id"]}
    old = rows(w["corpus"], "data") + rows(w["corpus"], "rejected")
    tomb = {t["id"]: t for t in rows(v2, "tombstones")}
    assert left | set(tomb) == {r["id"] for r in old} and not left & set(tomb)  # nothing lost, nothing kept twice
    assert tomb[gone[0]]["rule"] == "ids" and tomb[w["dup"]["id"]]["rule"] == "near_duplicate"
    assert tomb[w["dup"]["id"]]["matched_id"] == gone[0] and tomb[w["dup"]["id"]]["kind"] == "rejected"
    assert all(t["removed_in"] == "corpus@v2" and len(t["text_sha256"]) == 64 for t in tomb.values())
    # level 1: textbooks made from them (a textbook's parent_ids name its seed)
    tb_gone = {r["id"] for r in w["tb"] if r["parent_ids"][0] in gone}
    assert len(tb_gone) == 2
    tb2 = w["base"] / "textbooks@v2"
    assert {r["id"] for r in rows(tb2, "data")} == {r["id"] for r in w["tb"]} - tb_gone
    tb_tomb = {t["id"]: t for t in rows(tb2, "tombstones")}
    assert set(tb_tomb) == tb_gone and {t["rule"] for t in tb_tomb.values()} == {"lineage:parent_ids"}
    # level 2: rows made from those textbooks, including the row with one removed parent of two
    qa2 = w["base"] / "qa@v2"
    qa_gone = {f"qa-{i}" for i in tb_gone} | {"qa-two-parents"}
    assert {r["id"] for r in rows(qa2, "data")} == {f"qa-{r['id']}" for r in w["tb"]} - qa_gone
    assert {t["matched_id"] for t in rows(qa2, "tombstones")} <= tb_gone
    # changelog and stats
    log = json.loads((v2 / "changelog.json").read_text())
    assert len(log) == 1 and log[0]["version"] == "corpus@v2"
    assert log[0]["removed"]["by_rule"]["ids"] == 2 and log[0]["removed"]["by_rule"]["near_duplicate"] >= 1
    assert log[0]["rules"]["unmatched"]["ids"]["examples"] == ["not-in-corpus"]
    assert [(d["dataset"], d["action"], d["rows"]) for d in log[0]["lineage"]] == [
        ("textbooks", "remove", 2), ("qa", "remove", 3)]
    stats = json.loads((v2 / "stats.json").read_text())
    assert stats["invariant"]["holds"] and stats["throughput"]["lineage_levels"] == 2
    assert json.loads((v2 / "manifest.json").read_text())["status"] == "complete"
    assert json.loads((v2 / rm.ORIGIN_MANIFEST).read_text())["pipeline"] == "dedup"
    # quarantine rows have no id: copied as they are, and named as unchecked when there are any
    assert (v2 / "quarantine").is_dir() and rows(v2, "quarantine") == rows(w["corpus"], "quarantine")
    assert ("quarantine" in stats["unchecked_kinds"]) == bool(rows(w["corpus"], "quarantine"))


def test_a_second_removal_on_the_new_version(lineage_world):
    w = lineage_world
    base = w["base"]
    v2, tb2, qa2 = base / "corpus@v2", base / "textbooks@v2", base / "qa@v2"
    if not v2.exists():
        pytest.skip("needs the first removal (test_removal_follows_two_levels_of_lineage)")
    before = {p: tree_hash(p) for p in (v2, tb2, qa2)}
    target = w["seeds"][3]
    derived = f"derived=[{{path: {tb2}}}, {{path: {qa2}, action: list}}]"
    result = remove(v2, f"match.url={target['url']}", derived)
    v3 = base / "corpus@v3"
    assert result["output"] == str(v3) and result["derived"] == ["textbooks@v3"]
    assert {p: tree_hash(p) for p in (v2, tb2, qa2)} == before and not (base / "qa@v3").exists()
    assert target["id"] not in {r["id"] for r in rows(v3, "data")}
    tomb = rows(v3, "tombstones")
    assert {t["removed_in"] for t in tomb} == {"corpus@v2", "corpus@v3"}  # earlier tombstones carried
    assert [t["rule"] for t in tomb if t["removed_in"] == "corpus@v3"][0] == f"url:{target['url']}"
    tb_gone = [r["id"] for r in w["tb"] if r["parent_ids"][0] == target["id"]]
    assert {r["id"] for r in rows(tb2, "data")} - {r["id"] for r in rows(base / "textbooks@v3", "data")} == set(tb_gone)
    listed = rows(v3, "regenerate/qa")
    assert [(r["id"], r["matched_id"], r["rule"]) for r in listed] == [(f"qa-{tb_gone[0]}", tb_gone[0],
                                                                        "lineage:parent_ids")]
    log = json.loads((v3 / "changelog.json").read_text())
    assert [e["version"] for e in log] == ["corpus@v2", "corpus@v3"]
    assert log[1]["lineage"][1]["listed_in"] == "corpus@v3/regenerate/qa"
    assert "corpus@v3" in (v3 / "CHANGELOG.md").read_text()
    # the same removal again: recognised, nothing rewritten
    stamp = (v3 / "manifest.json").stat().st_mtime_ns
    again = remove(v2, f"match.url={target['url']}", derived)
    assert again["output"] == str(v3) and (v3 / "manifest.json").stat().st_mtime_ns == stamp


def test_cli_remove_into_an_explicit_output(lineage_world):
    """`flows run remove --corpus DIR --ids FILE --output DIR` as a user types it (in process)."""
    w = lineage_world
    ids = w["base"] / "ids-cli.txt"
    ids.write_text(w["seeds"][2]["id"] + "\n")
    out = w["base"] / "chosen-version"
    r = CliRunner().invoke(app, ["run", "remove", "--corpus", str(w["corpus"]), "--ids", str(ids),
                                 "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert w["seeds"][2]["id"] not in {x["id"] for x in rows(out, "data")}
    assert [t["id"] for t in rows(out, "tombstones")] == [w["seeds"][2]["id"]]
    assert json.loads((out / "changelog.json").read_text())[0]["version"] == "chosen-version"


def test_slices_of_a_removed_work_go_with_it(tmp_path):
    """Lineage inside one version (diachronic: works/ and the slices cut from them, linked by work_id)."""
    works = pa.table({"id": ["w1", "w2"], "text": ["Full text one.", "Full text two."],
                      "author": ["Mary Shelley", "Jane Austen"]})
    slices = pa.table({"id": ["w1#p0", "w1#p1", "w2#p0"], "text": ["para a", "para b", "para c"],
                       "work_id": ["w1", "w1", "w2"]})
    tables = {"works": works, "slices/1800_1820/train": slices}
    hits, _ = rm.match_dataset(tables, MatchSpec(author="mary  SHELLEY"), NearDupConfig(enabled=False))
    assert {k: dict(v) for k, v in hits[""].items()} == {"works": {0: ("author:mary  SHELLEY", "w1")}}
    hits, levels = follow_lineage({"": tables}, hits)
    assert levels == 1 and hits[""]["slices/1800_1820/train"] == {0: ("lineage:work_id", "w1"),
                                                                   1: ("lineage:work_id", "w1")}
    kept, tomb = rm.split_kind(slices, hits[""]["slices/1800_1820/train"], "slices/1800_1820/train", "x@v2")
    assert kept.column("id").to_pylist() == ["w2#p0"] and tomb.column("id").to_pylist() == ["w1#p0", "w1#p1"]
    # the same layout on disk, without a manifest: every sub-folder with Parquet shards is a kind
    for kind, t in tables.items():
        (tmp_path / "d" / kind).mkdir(parents=True)
        pq.write_table(t, tmp_path / "d" / kind / "part-00000.parquet")
    assert set(rm.dataset_kinds(tmp_path / "d")) == set(tables)


def test_versions_and_errors(tmp_path):
    assert rm.next_version(Path("/x/dolma")) == Path("/x/dolma@v2")
    assert rm.next_version(Path("/x/dolma@v2")) == Path("/x/dolma@v3")
    assert rm.version_of(Path("a@b@v12")) == ("a@b", 12)
    with pytest.raises(ValueError, match="never edits a version in place"):
        rm.plan_version(tmp_path, str(tmp_path / "inside"))
    runner = CliRunner()
    r = runner.invoke(app, ["run", "remove"])
    assert r.exit_code == 2 and "give the corpus to remove from" in r.output
    assert len(r.output.strip().splitlines()) == 1
    corpus = tmp_path / "c"
    (corpus / "data").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), corpus / "data" / "part-00000.parquet")
    r = runner.invoke(app, ["run", "remove", "--corpus", str(corpus)])
    assert r.exit_code == 2 and "give what to remove" in r.output
    r = runner.invoke(app, ["run", "remove", "--corpus", str(corpus), "--ids", str(tmp_path / "none.txt")])
    assert r.exit_code == 2 and "none.txt: id file does not exist" in r.output
    (tmp_path / "c@v2").mkdir()
    (tmp_path / "c@v2" / "something").write_text("not ours")
    r = runner.invoke(app, ["run", "remove", "--corpus", str(corpus), "--set", "match.ids=[a]"])
    assert r.exit_code == 2 and "is not a removal version" in r.output


def test_shipped_config_matches_the_model():
    import yaml

    from flows.config import defaults_yaml
    from flows.remove import RemoveConfig

    shipped = Path(rm.__file__).parents[1] / "configs" / "remove.yaml"
    assert yaml.safe_load(shipped.read_text()) == yaml.safe_load(defaults_yaml(RemoveConfig))
