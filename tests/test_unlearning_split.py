"""`flows run unlearning-split`: forget / retain / holdout packages, disjoint by id and by near-duplicate cluster.

TOFU's own files (../shared/data/unlearning) are the reference: TOFU is 200 fictitious authors x 20 QA pairs in
one order; forget01 / 05 / 10 are the last 2 / 10 / 20 authors and retain99 / 95 / 90 everything before them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from corpora.readers import InputError
from corpora.sample import sample_corpus_path
from filters import forget_split as fs
from filters.dedup.minhash import near_duplicate_clusters
from flows.cli import app
from flows.config import defaults_yaml, load_config
from tests.conftest import shared_path

PAIRS = [("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90")]
TOFU_ONE_WORD = 3660  # the one row TOFU's files word differently (retain95/99 vs forget10: same answer)


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def tofu(name: str) -> list[dict]:
    return json.loads(shared_path("data", "unlearning", f"tofu_{name}.json").read_text())


def tofu_corpus() -> fs.Corpus:
    d = shared_path("data", "unlearning")
    # TOFU's order: the first 180 authors (retain90), then the last 20 (forget10)
    return fs.read_qa([d / "tofu_retain90.json", d / "tofu_forget10.json"],
                      fs.QAInput(rows_per_author=20, id_prefix="tofu-"))


def assert_disjoint_by_cluster(texts_by_split: dict[str, list[str]]) -> None:
    """An independent check: cluster every output text again; no cluster may hold two splits."""
    texts, labels = [], []
    for s, ts in texts_by_split.items():
        texts += ts
        labels += [s] * len(ts)
    res = near_duplicate_clusters(texts)
    by_root: dict[int, set] = {}
    for r, lab in zip(res.root.tolist(), labels):
        by_root.setdefault(r, set()).add(lab)
    mixed = [v for v in by_root.values() if len(v) > 1]
    assert not mixed, f"{len(mixed)} near-duplicate clusters straddle splits: {mixed[:3]}"


# ---- TOFU -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("forget_name,retain_name", PAIRS)
def test_tofu_forget_sets_by_qa_file_are_disjoint_and_complete(forget_name, retain_name):
    corpus = tofu_corpus()
    d = shared_path("data", "unlearning")
    res = fs.assign_splits(corpus, fs.ForgetSpec(qa_file=[str(d / f"tofu_{forget_name}.json")]))
    t = res.table.to_pylist()
    forget = [r for r in t if r["split"] == "forget"]
    retain = [r for r in t if r["split"] == "retain"]
    want_f, want_r = tofu(forget_name), tofu(retain_name)
    assert len(forget) == len(want_f) and len(retain) == len(want_r) and len(forget) + len(retain) == 4000
    assert {r["id"] for r in forget}.isdisjoint({r["id"] for r in retain})
    # TOFU's definition: forget = the last n rows of the full order, retain = all rows before them
    assert [r["id"] for r in forget] == [f"tofu-{i:05d}" for i in range(4000 - len(want_f), 4000)]
    assert [r["id"] for r in retain] == [f"tofu-{i:05d}" for i in range(4000 - len(want_f))]
    assert [(r["question"], r["answer"]) for r in forget] == [(x["question"], x["answer"]) for x in want_f]
    assert [r["paraphrased_answer"] for r in forget] == [x["paraphrased_answer"] for x in want_f]
    assert [r["perturbed_answer"] for r in forget] == [x["perturbed_answer"] for x in want_f]
    differ = [i for i, (r, x) in enumerate(zip(retain, want_r)) if (r["question"], r["answer"]) != (x["question"],
                                                                                                   x["answer"])]
    if retain_name == "retain90":
        assert differ == []
    else:  # retain95/99 word one question of author 183 differently from forget10; same row, same answer
        assert differ == [TOFU_ONE_WORD] and retain[TOFU_ONE_WORD]["answer"] == want_r[TOFU_ONE_WORD]["answer"]
    assert_disjoint_by_cluster({"forget": [r["text"] for r in forget], "retain": [r["text"] for r in retain]})


def test_tofu_nested_sets_flow_writes_packages(tmp_path, prefect_harness):
    """One run, TOFU's recipe: forget the last 10% of authors, nested sets at 1/10, 5/10 and 10/10 of them."""
    from flows.unlearning_split import SplitConfig, split_flow

    d = shared_path("data", "unlearning")
    out = tmp_path / "tofu"
    cfg = load_config(SplitConfig, inputs=[str(d / "tofu_retain90.json"), str(d / "tofu_forget10.json")],
                      output=str(out), sets=["qa.rows_per_author=20", "qa.id_prefix=tofu-", "group_by=author",
                                             "forget.fraction=0.1", "forget.order=last", "holdout_fraction=0",
                                             "sets.mode=nested", "sets.sizes=[0.1,0.5,1.0]", "seed=3"])
    result = split_flow(cfg)
    assert result["stats"]["invariant"]["holds"]
    for forget_name, retain_name in PAIRS:
        f, r = rows(out, f"sets/{forget_name}/forget"), rows(out, f"sets/{forget_name}/retain")
        want_f, want_r = tofu(forget_name), tofu(retain_name)
        assert [(x["question"], x["answer"]) for x in f] == [(x["question"], x["answer"]) for x in want_f]
        assert len(r) == len(want_r) and len(f) + len(r) == 4000
        assert {x["id"] for x in f}.isdisjoint({x["id"] for x in r})
        assert {x["author"] for x in f}.isdisjoint({x["author"] for x in r})  # whole authors
        same = sum((a["question"], a["answer"]) == (b["question"], b["answer"]) for a, b in zip(r, want_r))
        assert same == len(want_r) - (retain_name != "retain90")  # TOFU's one differently worded question
    nested = [{x["id"] for x in rows(out, f"sets/{n}/forget")} for n, _ in PAIRS]
    assert nested[0] < nested[1] < nested[2]
    tofu_forget = rows(out, "tofu/forget10")  # TOFU's configuration names (tests/test_tofu_packages.py)
    assert len(tofu_forget) == 400 and {"question", "answer", "paraphrased_answer", "perturbed_answer"} <= set(
        tofu_forget[0]) and isinstance(tofu_forget[0]["perturbed_answer"], list)
    assert len(rows(out, "knowmem/forget")) == 400 and len(rows(out, "knowmem/retain")) == 3600
    muse = {k: rows(out, f"muse/{k}") for k in ("forget", "retain1", "retain2")}
    assert len(muse["forget"]) == 400 and len(muse["retain1"]) + len(muse["retain2"]) == 3600
    authors = {k: {int(x["id"].split("-")[1]) // 20 for x in v} for k, v in muse.items()}
    assert authors["retain1"].isdisjoint(authors["retain2"])  # MUSE's two retain sets split by author too
    manifest = json.loads((out / "manifest.json").read_text())
    un = manifest["unlearning"]
    assert manifest["status"] == "complete" and un["seed"] == 3 and "unit" in un["semantics"]
    assert un["sizes"]["sets"]["forget05"] == {"forget": 200, "retain": 3800}
    assert_disjoint_by_cluster({s: [x["text"] for x in rows(out, s)] for s in fs.SPLITS})


# ---- documents --------------------------------------------------------------------------------------------------
def test_default_run_on_the_bundled_sample(tmp_path, prefect_harness):
    from flows.unlearning_split import SplitConfig, split_flow

    out = tmp_path / "sample"
    result = split_flow(load_config(SplitConfig, output=str(out)))
    got = {s: rows(out, s) for s in fs.SPLITS}
    ids = [r["id"] for s in fs.SPLITS for r in got[s]]
    sample = [json.loads(x) for x in sample_corpus_path().read_text().splitlines()]
    assert sorted(ids) == sorted(d["id"] for d in sample)  # every document exactly once
    assert result["stats"]["invariant"]["holds"] and result["stats"]["demo"]
    forget = {r["id"]: r for r in got["forget"]}
    assert {"sample-0003", "sample-0100"} <= set(forget)
    spec = yaml.safe_load((Path(fs.__file__).parents[1] / "corpora/sample_data/forget_sample.yaml").read_text())
    for d in sample:
        if "example-23.org" in (d["url"] or "") or {"glacier", "crevasses"} <= set(d["text"].lower().replace(
                ".", " ").replace(",", " ").split()):
            assert d["id"] in forget, d["id"]
    near = [r for r in forget.values() if r["split_rule"] == "near_duplicate"]
    assert near, "the sample's planted near duplicates of forgotten documents must follow them"
    for r in near:  # each came with a named document of its cluster
        assert forget[r["matched_id"]]["split_rule"] not in ("near_duplicate", None)
        assert forget[r["matched_id"]]["dup_cluster_id"] == r["dup_cluster_id"]
    assert spec["domain"] == ["example-23.org"]
    assert_disjoint_by_cluster({s: [r["text"] for r in got[s]] for s in fs.SPLITS})
    assert 0.05 < len(got["holdout"]) / len(sample) < 0.15
    verb = rows(out, "verbmem/forget")
    assert verb and all(v["prompt"] in forget[v["parent_id"]]["text"] and v["gt"] in forget[v["parent_id"]]["text"]
                        for v in verb)
    cfg = fs.ProbeConfig()
    for v in verb:  # MUSE's shape: the excerpt's last gt_words words are gt, the words before them the prompt
        n = min(len(forget[v["parent_id"]]["text"].split()), cfg.prompt_words + cfg.gt_words)
        g = min(cfg.gt_words, n - cfg.min_prompt_words)
        assert (len(v["prompt"].split()), len(v["gt"].split())) == (n - g, g)
    assert max(len(v["prompt"].split()) for v in verb) > 100  # hundreds of words where the text has them
    muse = {k: rows(out, f"muse/{k}") for k in ("forget", "retain1", "retain2", "holdout")}
    assert sorted(r["id"] for v in muse.values() for r in v) == sorted(ids)
    assert not (out / "tofu").exists()  # a document corpus has no QA layout (the stats say why)
    assert "tofu" in result["stats"]["layouts"]["skipped"]


def _docs(tmp_path: Path, docs: list[dict]) -> fs.Corpus:
    p = tmp_path / "docs.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return fs.read_documents([p])


BASE = ("The lighthouse keeper climbed the spiral stairs every evening at dusk to light the great lamp, "
        "trimming the wick and polishing the lens so ships could find the harbour through fog and storm ")


def test_a_near_duplicate_of_a_forgotten_document_never_stays_in_retain(tmp_path):
    docs = [{"id": "a", "text": BASE + "in the winter of that year."},
            {"id": "b", "text": BASE + "in the winter of that year!"},  # near duplicate of a
            {"id": "c", "text": "Bees dance to tell the hive where flowers grow, and the angle of the dance "
                                "points toward the sun while its length tells the distance to fly."},
            {"id": "d", "text": BASE.replace("lighthouse", "light house") + "in the winter of that year."}]
    res = fs.assign_splits(_docs(tmp_path, docs), fs.ForgetSpec(ids=["a"]), holdout_fraction=0)
    got = {r["id"]: r for r in res.table.to_pylist()}
    assert got["a"]["split_rule"] == "ids" and got["b"]["split"] == got["d"]["split"] == "forget"
    assert got["b"]["split_rule"] == "near_duplicate" and got["b"]["matched_id"] == "a"
    assert got["c"]["split"] == "retain"
    off = fs.assign_splits(_docs(tmp_path, docs), fs.ForgetSpec(ids=["a"]), holdout_fraction=0,
                           near_dup=fs.NearDupConfig(enabled=False))
    assert [r["split"] for r in off.table.to_pylist()] == ["forget", "retain", "retain", "retain"]


def test_groups_are_never_cut_and_sequential_sets_are_disjoint(tmp_path):
    import random

    rng = random.Random(5)  # distinct texts (digits would not do: the MinHash normalisation maps them all to 0)
    vocab = [a + b for a in ("ka", "lo", "mi", "nu", "pe", "ri", "so", "tu") for b in ("ba", "de", "fi", "go", "ju")]
    docs = [{"id": f"d{i:03d}", "text": " ".join(rng.choice(vocab) for _ in range(40)),
             "author": f"author {i % 12}"} for i in range(120)]
    corpus = _docs(tmp_path, docs)
    res = fs.assign_splits(corpus, fs.ForgetSpec(fraction=0.5, order="random"), group_by="author",
                           holdout_fraction=0.25, seed=11,
                           sets=fs.SetsConfig(mode="sequential", sizes=[0.5, 0.5]))
    t = res.table.to_pylist()
    by_author: dict[str, set] = {}
    for r in t:
        by_author.setdefault(json.loads(r["metadata"])["author"], set()).add(r["split"])
    assert all(len(v) == 1 for v in by_author.values())
    assert res.stats["weight_by_split"] == {"forget": 6, "holdout": 3, "retain": 3}
    s1, s2 = res.sets["step1"], res.sets["step2"]
    assert s1["forget"].sum() == s2["forget"].sum() == 30 and not (s1["forget"] & s2["forget"]).any()
    split = np.array([r["split"] for r in t])
    assert ((s1["forget"] | s2["forget"]) == (split == "forget")).all()
    assert not (s2["retain"] & (s1["forget"] | s2["forget"])).any()  # step 2's retain excludes both steps
    again = fs.assign_splits(corpus, fs.ForgetSpec(fraction=0.5, order="random"), group_by="author",
                             holdout_fraction=0.25, seed=11)
    assert again.table.column("split").to_pylist() == [r["split"] for r in t]  # seeded: same every run
    other = fs.assign_splits(corpus, fs.ForgetSpec(fraction=0.5, order="random"), group_by="author",
                             holdout_fraction=0.25, seed=12)
    assert other.table.column("split").to_pylist() != [r["split"] for r in t]


def test_bad_input_is_named_or_quarantined(tmp_path):
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n')
    renamed = fs.read_documents([dup])  # the one id policy: the later row becomes x#2 (never refused)
    assert renamed.table.column("id").to_pylist() == ["x", "x#2"] and renamed.duplicate_ids_renamed == 1
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps([{"question": "Q?", "answer": "A."}, ["not", "an", "object"],
                              {"question": "Q2?", "answer": 3}, {"question": "Q3?", "answer": "B."}]))
    c = fs.read_qa([qa])
    assert c.records_read == 4 and c.table.num_rows == 2 and [q["location"] for q in c.quarantine] == ["item 1",
                                                                                                        "item 2"]
    assert c.table.column("id").to_pylist() == ["qa-00000", "qa-00003"]  # ids are positions, bad rows included
    with pytest.raises(InputError, match="group_by=author: no row has one"):
        fs.assign_splits(c, fs.ForgetSpec(fraction=0.5), group_by="author")
    with pytest.raises(InputError, match="forget.qa_file matches QA rows"):
        fs.assign_splits(_docs(tmp_path, [{"id": "a", "text": "t"}]), fs.ForgetSpec(qa_file=[str(qa)]))


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "some text"}\n')
    r = runner.invoke(app, ["run", "unlearning-split", "--input", str(docs), "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and "give a forget spec" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["run", "unlearning-split", "--input", str(docs), "--set", "layouts=[tofu]",
                            "--set", "forget.ids=[a]", "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and "tofu needs a QA corpus" in r.output
    r = runner.invoke(app, ["run", "unlearning-split", "--set", "sets.mode=nested", "--set", "sets.sizes=[0.5,0.2]"])
    assert r.exit_code == 2 and "increasing" in r.output


def test_shipped_config_matches_the_model():
    from flows.unlearning_split import SplitConfig

    shipped = Path(fs.__file__).parents[1] / "configs" / "unlearning-split.yaml"
    assert yaml.safe_load(shipped.read_text()) == yaml.safe_load(defaults_yaml(SplitConfig))
