"""One output layout, declared (corpora/layout.py): the folders Run.publish writes, the manifest's names,
the dataset card's configs and the report's kinds all follow one declaration (`Pipeline.layout`)."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora.dataset_card import card_configs
from corpora.layout import Kind, Layout
from corpora.records import QUARANTINE_SCHEMA
from corpora.report_kit import load_outputs
from corpora.shards import write_table_atomic
from flows.config import RunConfig
from flows.run_report import card_inputs, run_layout
from flows.scaffold import Run

SCHEMA = pa.schema([("id", pa.string()), ("lang", pa.string())])


def _rows(folder):
    return sorted(r["id"] for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist())


def test_paths_tables_and_card_configs_of_declared_and_undeclared_names():
    lay = Layout.documents(Kind("slices", splits=True), "instructions", partition_by="lang")
    assert lay.names() == ("data", "rejected", "quarantine", "slices", "instructions")
    assert lay.path("data", "de") == "data/lang=de" and lay.path("slices", ("1750_1820", "dev")) == \
        "slices/1750_1820/dev" and lay.path("rejected") == "rejected"
    with pytest.raises(ValueError, match="no partitions"):
        lay.path("rejected", "x")
    assert lay.table_of("data/lang=de") == "data" and lay.table_of("slices/1750_1820/dev") == "slices/1750_1820/dev"
    assert lay.card_config("slices/1750_1820/dev") == ("slices_1750_1820", "dev", "slices")
    assert lay.card_config("instructions") == ("instructions", "train", None)
    # what a run without a recorded layout gets: the names' own rules (the card's and report's before the layout)
    plain = Layout(())
    assert plain.table_of("data/lang=en") == "data" and plain.table_of("muse/forget") == "muse/forget"
    assert plain.card_config("muse/forget") == ("muse_forget", "train", None)
    assert plain.card_config("qa/test") == ("qa", "test", None)
    assert plain.card_config("slices/a/train") == ("slices_a", "train", "slices")


def test_the_report_and_card_read_the_layout_each_pipeline_declares(tmp_path):
    """`Pipeline.layout` (the one declaration; dolma's depends on its config), as `flows report DIR` finds it."""
    def layout_of(pipeline, config):
        (tmp_path / "manifest.json").write_text(json.dumps({"pipeline": pipeline, "config": config}))
        return run_layout(tmp_path)

    assert layout_of("sphinx", {}).kind("data").partition_by == "lang"
    assert layout_of("diachronic", {}).kind("slices").splits
    assert layout_of("ensemble-instruct", {}).names()[3:] == ("instructions", "instances", "votes")
    assert "attributes" in layout_of("dolma", {"attributes_only": True}).names()
    assert layout_of("dolma", {}).retired == ("attributes",)
    assert layout_of("no-such-pipeline", {}).kinds == () and layout_of("dolma", {"nope": 1}).kinds == ()


def test_partitions_from_memory_stale_ones_removed_and_the_card_reads_the_recorded_layout(tmp_path):
    cfg = RunConfig(output=str(tmp_path / "out"))
    layout = Layout.documents(partition_by="lang")
    run = Run.start("demo", cfg, kinds=layout)
    (run.out_dir / "data" / "lang=xx").mkdir(parents=True)  # an earlier run's partition
    (run.out_dir / "data" / "lang=xx" / "part-00000.parquet").write_bytes(b"old")
    tables = {"de": pa.table({"id": ["a", "b"], "lang": ["de", "de"]}, schema=SCHEMA),
              "en": pa.table({"id": ["c"], "lang": ["en"]}, schema=SCHEMA)}
    run.publish_partitions("data", tables, SCHEMA)
    staged = write_table_atomic(tmp_path / "rej.parquet", pa.table({"id": ["r"], "lang": ["fr"]}, schema=SCHEMA))
    run.publish("rejected", [staged.path], SCHEMA)  # a staged file and a table publish alike
    run.publish("quarantine", [])  # the declared schema
    assert sorted(p.name for p in (run.out_dir / "data").iterdir()) == ["lang=de", "lang=en"]
    assert _rows(run.out_dir / "data") == ["a", "b", "c"] and run.rows("data") == 3 and run.rows("rejected") == 1
    run.finish({}, records_read=4)
    manifest = json.loads((run.out_dir / "manifest.json").read_text())
    assert list(manifest["outputs"]) == ["data/lang=de", "data/lang=en", "rejected", "quarantine"]
    assert manifest["outputs"]["quarantine"] == [] and run.layout.kind("quarantine").schema == QUARANTINE_SCHEMA
    out = load_outputs(run.out_dir, layout)
    assert list(out.kinds) == ["data", "rejected", "quarantine"]  # partitions belong to their kind
    configs = card_configs(card_inputs(out)["kinds"], layout)
    assert [(c["config_name"], c["data_files"]) for c in configs] == [
        ("default", [{"split": "train", "path": ["data/lang=de/*.parquet", "data/lang=en/*.parquet"]}]),
        ("rejected", [{"split": "train", "path": ["rejected/*.parquet"]}])]
    assert "config_name: default" in (run.out_dir / "README.md").read_text()


def test_split_kinds_projected_kinds_retired_kinds_and_a_missing_schema(tmp_path):
    out = tmp_path / "out"
    (out / "attributes").mkdir(parents=True)  # an earlier run's kind this layout retires
    layout = Layout((Kind("slices", SCHEMA, splits=True), Kind("ids", pa.schema([("id", pa.string())]), project=True),
                     Kind("loose")), retired=("attributes",))
    run = Run.start("demo", RunConfig(output=str(out)), kinds=layout, clear=False)
    part = write_table_atomic(tmp_path / "p.parquet", pa.table({"id": ["a"], "lang": ["en"]}, schema=SCHEMA)).path
    for group, split in (("1750_1820", "train"), ("1750_1820", "test"), ("1820_1880", "train")):
        run.publish("slices", [part], part=(group, split))
    assert not (out / "attributes").exists()
    run.publish("ids", [part])
    assert pq.read_schema(next((out / "ids").glob("*.parquet"))).names == ["id"]  # only its schema's columns
    with pytest.raises(ValueError, match="no schema"):
        run.publish("loose", [])
    assert run.rows("slices") == 3
    run.finish({}, invariant={"holds": True})
    configs = {c["config_name"]: c for c in card_configs(card_inputs(load_outputs(out, layout))["kinds"], layout)}
    assert configs["slices_1750_1820"]["data_files"] == [
        {"split": "train", "path": ["slices/1750_1820/train/*.parquet"]},
        {"split": "test", "path": ["slices/1750_1820/test/*.parquet"]}]
    assert [d["split"] for d in configs["slices"]["data_files"]] == ["train", "test"]
    assert configs["slices"].get("default") and "ids" in configs


def test_table_kinds_and_publishing_at_another_runs_folder(tmp_path):
    """unlearning-split's packages are `tables` kinds (`tofu/<table>`); remove publishes at the folders the source
    run's manifest names. Both land where the name says and are counted under that name only."""
    out = tmp_path / "out"
    layout = Layout((Kind("forget"), Kind("tofu", tables=True)))
    run = Run.start("demo", RunConfig(output=str(out)), kinds=layout, clear=False)
    part = write_table_atomic(tmp_path / "p.parquet", pa.table({"id": ["a", "b"], "lang": ["en", "de"]},
                                                               schema=SCHEMA)).path
    run.publish("tofu", [part], SCHEMA, part="forget01")
    run.publish_at("regenerate/web", [part], SCHEMA)
    assert layout.path("tofu", "forget01") == "tofu/forget01"
    with pytest.raises(ValueError, match="no partitions"):
        layout.path("forget", "x")
    assert sorted(run.outputs) == ["regenerate/web", "tofu/forget01"]
    assert pq.read_table(out / "tofu" / "forget01").num_rows == 2 and run.rows("tofu/forget01") == 2
    assert run.rows("tofu") == 0  # a tables kind is not one table
    assert all(s["path"].startswith("regenerate/web/") for s in run.outputs["regenerate/web"])
    assert layout.card_config("tofu/forget01") == ("tofu_forget01", "train", None)  # what the name implies
