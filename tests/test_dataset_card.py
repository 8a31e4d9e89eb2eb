"""The README.md dataset card: a Hugging Face header `datasets.load_dataset(DIR)` follows (the default config = the
kept rows, one config per output kind, splits for `<group>/<split>` kinds, per-language folders), and the lineage /
funnel / config a reader needs. Real runs (shared with tests/test_reports.py: built once per session)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from corpora.dataset_card import card_configs, render_card, size_category

datasets = pytest.importorskip("datasets", reason="datasets not installed (pip install -e .[test])")

from tests.test_reports import diachronic_output, dolma_output, sphinx_layout, textbooks_output  # noqa: E402


def header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def ids(path) -> list[str]:
    return [i for f in sorted(path.glob("part-*.parquet")) for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, prefect_harness):
    return tmp_path_factory.getbasetemp() / "report_runs"


def test_dolma_card_loads_the_kept_rows(runs_dir, tmp_path):
    out = dolma_output(runs_dir)
    card = (out / "README.md").read_text()
    h = header(card)
    assert h["license"] == "other" and h["task_categories"] == ["text-generation"] and h["language"] == ["en"]
    assert [c["config_name"] for c in h["configs"]] == ["default", "rejected"] and h["configs"][0]["default"]
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert list(ds) == ["train"] and ds["train"]["id"] == ids(out / "data")
    rej = datasets.load_dataset(str(out), "rejected", cache_dir=str(tmp_path / "hf"))
    assert rej["train"]["id"] == ids(out / "rejected") and set(rej["train"]["reason"]) >= {"langid", "minhash"}
    manifest = json.loads((out / "manifest.json").read_text())
    for i in manifest["inputs"]:  # lineage: every input with its hash
        assert i["sha256"] in card
    stats = json.loads((out / "stats.json").read_text())
    for step, s in stats["filters"].items():  # the funnel
        assert f"| {step} | {s['docs_in']:,} | {s['removed']:,} |" in card
    assert "threshold: 0.65" in card  # the config block


def test_textbooks_card_names_models_and_sampling(runs_dir, tmp_path):
    out = textbooks_output(runs_dir)
    card = (out / "README.md").read_text()
    h = header(card)
    assert "synthetic" in h["tags"] and h["size_categories"] == ["n<1K"]
    assert "| textbooks | replay | replay-model |" in card and '"temperature": 0.6' in card
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert sorted(ds["train"]["id"]) == sorted(ids(out / "data")) and len(ds["train"]) == 5
    assert set(ds["train"].column_names) >= {"model", "sampling_params", "template_id", "parent_ids", "round"}


def test_diachronic_card_has_one_config_per_slice_with_splits(runs_dir, tmp_path):
    out = diachronic_output(runs_dir)
    h = header((out / "README.md").read_text())
    names = [c["config_name"] for c in h["configs"]]
    assert names[0] == "slices" and h["configs"][0]["default"] and "works" in names
    sliced = {n for n in names if n.startswith("slices_")}
    assert sliced == {f"slices_{p.name}" for p in (out / "slices").iterdir() if any(p.rglob("part-*.parquet"))}
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    for split in ds:
        assert sorted(ds[split]["id"]) == sorted(i for d in (out / "slices").glob(f"*/{split}") for i in ids(d))
    works = datasets.load_dataset(str(out), "works", cache_dir=str(tmp_path / "hf"))
    assert len(works["train"]) == pq.ParquetFile(out / "works" / "part-00000.parquet").metadata.num_rows


def test_card_on_the_sphinx_layout_loads_every_language(runs_dir, tmp_path):
    from flows.run_report import write_dataset_card

    out = sphinx_layout(runs_dir)
    card = write_dataset_card(out).read_text()
    h = header(card)
    assert h["configs"][0]["data_files"] == [{"split": "train", "path": [f"data/lang={x}/*.parquet"
                                                                         for x in ("de", "fr", "sw")]}]
    assert h["language"] == ["de", "fr", "sw"]
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert len(ds["train"]) == 28 and set(ds["train"]["lang"]) == {"de", "fr", "sw"}
    assert h["task_categories"] == ["translation", "text-generation"]


def test_configs_from_kinds():
    kinds = {"data": {"files": ["data/part-00000.parquet", "data/part-00001.parquet"], "rows": 5},
             "rejected": {"files": [], "rows": 0},
             "slices/a/train": {"files": ["slices/a/train/part-00000.parquet"], "rows": 2},
             "slices/a/test": {"files": ["slices/a/test/part-00000.parquet"], "rows": 1},
             "slices/b/train": {"files": ["slices/b/train/part-00000.parquet"], "rows": 2}}
    cfgs = {c["config_name"]: c for c in card_configs(kinds)}
    assert list(cfgs) == ["default", "slices_a", "slices_b", "slices"]  # the default first; empty kinds omitted
    assert cfgs["default"]["data_files"] == [{"split": "train", "path": ["data/*.parquet"]}]
    assert cfgs["slices_a"]["data_files"] == [{"split": "train", "path": ["slices/a/train/*.parquet"]},
                                              {"split": "test", "path": ["slices/a/test/*.parquet"]}]
    assert cfgs["slices"]["data_files"][0] == {"split": "train", "path": ["slices/a/train/*.parquet",
                                                                         "slices/b/train/*.parquet"]}
    assert cfgs["slices"]["_kinds"] == ["slices/a/train", "slices/a/test", "slices/b/train"]
    no_data = {k: v for k, v in kinds.items() if k != "data"}
    first = card_configs(no_data)[0]
    assert first["config_name"] == "slices" and first["default"]


def test_render_card_license_size_and_degrades_without_stats():
    kinds = {"data": {"files": ["data/part-00000.parquet"], "rows": 12_345, "bytes": 10,
                      "schema": [("id", "string"), ("text", "string")]}}
    card = render_card({"pipeline": "impossible-distillation", "config": {"license": "cc-by-4.0", "mode": "summary"}},
                       {}, kinds)
    h = header(card)
    assert h["license"] == "cc-by-4.0" and h["task_categories"] == ["summarization"]
    assert h["size_categories"] == ["10K<n<100K"] and "| `text` | string |" in card
    assert "Inputs: none recorded" in card and "## Funnel" not in card
    bare = header(render_card({}, {}, {}))
    assert bare["license"] == "other" and bare["configs"] == []
    assert [size_category(n) for n in (0, 999, 1000, 10**9)] == ["n<1K", "n<1K", "1K<n<10K", "n>1B"]


def test_a_kind_with_zero_rows_gets_no_config_and_every_listed_config_loads(tmp_path):
    """A run with no rejected rows (an empty rejected/ kind): the card lists no `rejected` config, and every config
    it does list loads with `datasets.load_dataset` (issue 24)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpora.dataset_card import card_configs
    (tmp_path / "data").mkdir()
    (tmp_path / "rejected").mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"]}), tmp_path / "data" / "part-00000.parquet")
    kinds = {"data": {"rows": 2, "files": ["data/part-00000.parquet"]}, "rejected": {"rows": 0, "files": []}}
    configs = card_configs(kinds)
    assert [c["config_name"] for c in configs] == ["default"]
    for c in configs:
        files = {d["split"]: [str(tmp_path / p) for p in d["path"]] for d in c["data_files"]}
        ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
        assert ds["train"]["id"] == ["a", "b"]
