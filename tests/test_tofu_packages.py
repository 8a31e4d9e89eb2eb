"""`unlearning-split`'s TOFU package, read the way TOFU's own code reads the locuslab/TOFU dataset.

TOFU's loader (locuslab/tofu data_module.py, TextForgetDatasetQA.__init__ lines 41-43) does
`datasets.load_dataset(data_path, split)["train"]` with `split` = a configuration name (`forget10`) and the retain
name made by `"retain" + str(100 - int(split.replace("forget", ""))).zfill(2)`; its evaluation (config/forget.yaml
lines 30-41, config/eval_everything.yaml) reads `<split>_perturbed`, `retain_perturbed`, `real_authors_perturbed`,
`world_facts_perturbed` with the keys `question`, `answer`, `paraphrased_answer`, `perturbed_answer`; the IDK loss
reads `data/idontknow.jsonl` with `open(...).readlines()`. This test does exactly that on our output folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpora.readers import InputError
from filters import forget_split as fs
from flows.config import load_config
from tests.conftest import shared_path

datasets = pytest.importorskip("datasets", reason="the `test` extra's datasets reads the card as TOFU does")

PAIRS = [("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90")]
TOFU_KEYS = {"question", "answer", "paraphrased_answer", "perturbed_answer"}  # eval_everything.yaml's answer keys


def tofu(name: str) -> list[dict]:
    return json.loads(shared_path("data", "unlearning", f"tofu_{name}.json").read_text())


def tofu_retain_name(split: str) -> str:  # data_module.py line 42, verbatim
    return "retain" + str(100 - int(split.replace("forget", ""))).zfill(2)


@pytest.fixture(scope="module")
def tofu_run(tmp_path_factory, prefect_harness):
    """TOFU's recipe (last 10% of authors, nested 1 / 5 / 10%) with TOFU's evaluation sets given: idontknow from
    ../shared; retain_perturbed and real_authors_perturbed in TOFU's own formats (JSON array / JSON lines), small
    hand-made files (TOFU's are not in ../shared) whose retain rows are real retain90 rows."""
    from flows.unlearning_split import SplitConfig, split_flow

    d = shared_path("data", "unlearning")
    tmp = tmp_path_factory.mktemp("tofu")
    retain90 = tofu("retain90")
    rp = [{**retain90[i], "paraphrased_answer": f"paraphrase {i}", "perturbed_answer": [f"wrong {i}a", f"wrong {i}b"]}
          for i in (0, 1, 2, 3599)]
    rp.append({**tofu("forget01")[0], "paraphrased_answer": "p", "perturbed_answer": ["x"]})  # a forget row: dropped
    (tmp / "retain_perturbed.json").write_text(json.dumps(rp))
    (tmp / "real_authors_perturbed.json").write_text(
        '{"question":"Who wrote \'Pride and Prejudice\'?","answer":"Jane Austen","perturbed_answer":["Emily Bronte",'
        '"Mary Shelley"]}\n{"question":"Who wrote \'Moby-Dick\'?","answer":"Herman Melville","perturbed_answer":'
        '["Mark Twain","Jack London"]}\n')
    out = tmp / "out"
    cfg = load_config(SplitConfig, inputs=[str(d / "tofu_retain90.json"), str(d / "tofu_forget10.json")],
                      output=str(out), sets=["qa.rows_per_author=20", "qa.id_prefix=tofu-", "group_by=author",
                                             "forget.fraction=0.1", "forget.order=last", "holdout_fraction=0",
                                             "sets.mode=nested", "sets.sizes=[0.1,0.5,1.0]",
                                             f"tofu.retain_perturbed={tmp / 'retain_perturbed.json'}",
                                             f"tofu.real_authors_perturbed={tmp / 'real_authors_perturbed.json'}",
                                             f"tofu.idontknow={d / 'tofu_idontknow.jsonl'}"])
    result = split_flow(cfg)
    return out, result, rp, tmp


def load(out: Path, config: str, cache: Path):
    return datasets.load_dataset(str(out), config, cache_dir=str(cache))["train"]


@pytest.mark.parametrize("forget_name,retain_name", PAIRS)
def test_tofu_loader_reads_forget_and_retain_by_tofu_config_names(tofu_run, forget_name, retain_name):
    out, result, _, tmp = tofu_run
    assert result["stats"]["invariant"]["holds"]
    forget = load(out, forget_name, tmp / "hf")
    retain = load(out, tofu_retain_name(forget_name), tmp / "hf")
    assert tofu_retain_name(forget_name) == retain_name
    want_f, want_r = tofu(forget_name), tofu(retain_name)
    assert [(r["question"], r["answer"]) for r in forget] == [(x["question"], x["answer"]) for x in want_f]
    assert len(retain) == len(want_r) and len(forget) + len(retain) == 4000
    same = sum((a["question"], a["answer"]) == (b["question"], b["answer"]) for a, b in zip(retain, want_r))
    assert same == len(want_r) - (retain_name != "retain90")  # TOFU's one differently worded question (row 3660)
    pert = load(out, f"{forget_name}_perturbed", tmp / "hf")  # forget.yaml: split: ${..split}_perturbed
    assert TOFU_KEYS <= set(pert.column_names)
    assert [r["paraphrased_answer"] for r in pert] == [x["paraphrased_answer"] for x in want_f]
    assert [r["perturbed_answer"] for r in pert] == [x["perturbed_answer"] for x in want_f]
    assert [r["paraphrased_question"] for r in pert] == [x["paraphrased_question"] for x in want_f]


def test_full_and_the_evaluation_sets_tofu_reads(tofu_run):
    out, result, rp, tmp = tofu_run
    full = load(out, "full", tmp / "hf")  # finetune.yaml: split: full
    assert len(full) == 4000
    given = load(out, "retain_perturbed", tmp / "hf")
    assert TOFU_KEYS <= set(given.column_names)
    assert [(r["question"], r["paraphrased_answer"]) for r in given] == [(x["question"], x["paraphrased_answer"])
                                                                         for x in rp[:4]]
    st = result["stats"]["layouts"]["tofu"]
    assert st["retain_perturbed"] == {"given": 5, "written": 4, "not_in_retain": 1}
    # the given answers are joined into the retain rows with the same question and answer
    retain90 = load(out, "retain90", tmp / "hf")
    filled = {r["question"]: r for r in retain90 if r["paraphrased_answer"] is not None}
    assert len(filled) == 4 and filled[rp[3]["question"]]["perturbed_answer"] == rp[3]["perturbed_answer"]
    assert st["retain_rows_with_perturbed"] == 4 and result["stats"]["layouts"]["perturbed_joined"] == 4
    ra = load(out, "real_authors_perturbed", tmp / "hf")  # passed through as given
    assert [r["answer"] for r in ra] == ["Jane Austen", "Herman Melville"] and ra[0]["perturbed_answer"][1] == \
        "Mary Shelley"
    assert "world_facts_perturbed" in st["skipped"]
    idk = (out / "tofu" / "idontknow.jsonl").read_text()
    assert idk == shared_path("data", "unlearning", "tofu_idontknow.jsonl").read_text()
    refusals = [line.strip() for line in (out / "tofu" / "idontknow.jsonl").open().readlines()]  # data_module.py
    assert refusals[0] == "I'm not certain about that." and len(refusals) >= 99


def test_without_retain_perturbed_the_retain90_rows_have_none_and_the_stats_say_why():
    """TOFU's retain90.json holds question / answer only; its paraphrased / perturbed answers are in TOFU's separate
    retain_perturbed.json (not in ../shared). The forget10 rows inside retain99 / retain95 keep theirs."""
    d = shared_path("data", "unlearning")
    corpus = fs.read_qa([d / "tofu_retain90.json", d / "tofu_forget10.json"],
                        fs.QAInput(rows_per_author=20, id_prefix="tofu-"))
    assert {"paraphrased_answer", "perturbed_answer"}.isdisjoint(tofu("retain90")[0])
    res = fs.assign_splits(corpus, fs.ForgetSpec(fraction=0.1, order="last"), group_by="author",
                           holdout_fraction=0.1, sets=fs.SetsConfig(mode="nested", sizes=[0.1, 0.5, 1.0]))
    tabs, st = fs.tofu_tables(res.table, res.sets, res.stats["weight_by_split"], res.stats["total_weight"], {})
    assert st["retain_rows_with_perturbed"] == 0 and "retain_perturbed" in st["skipped"]
    assert "retain_perturbed" not in tabs
    r99 = tabs["retain99"].to_pylist()
    assert sum(r["paraphrased_answer"] is not None for r in r99) == 360  # forget10 minus forget01
    assert tabs["holdout10"].num_rows == 400 and tabs["full"].num_rows == 3600  # holdout: 20 authors


def test_bad_evaluation_sets_are_named(tmp_path):
    bad = tmp_path / "rp.json"
    bad.write_text(json.dumps([{"question": "q", "answer": "a", "perturbed_answer": ["x"]}]))
    with pytest.raises(InputError, match=r"rp.json: item 0: no paraphrased_answer"):
        fs.read_tofu_eval(bad, "retain_perturbed")
    empty = tmp_path / "idk.jsonl"
    empty.write_text("\n \n")
    with pytest.raises(InputError, match="holds no refusal"):
        fs.read_idontknow(empty)
