"""The run scaffold: the manifest tells a half-published output from a finished one; overwrite clears the
pipeline's own output kinds only."""
import json

import pyarrow as pa
import pytest

from corpora.shards import write_table_atomic
from flows.config import RunConfig
from flows.scaffold import Run


def test_manifest_says_publishing_until_the_run_finishes(tmp_path):
    cfg = RunConfig(output=str(tmp_path / "out"))
    run = Run.start("demo", cfg, kinds=("data", "works"))
    part = write_table_atomic(tmp_path / "p.parquet", pa.table({"id": ["a", "b"]})).path
    run.publish("data", [part], pa.schema([("id", pa.string())]))
    manifest = json.loads((run.out_dir / "manifest.json").read_text())
    assert manifest["status"] == "publishing"  # killed here: a reader can tell
    with pytest.raises(RuntimeError, match="invariant"):
        run.finish({}, records_read=3)  # 2 rows published for 3 read: the run fails, the files say why
    assert json.loads((run.out_dir / "manifest.json").read_text())["status"] == "invariant_failed"
    assert json.loads((run.out_dir / "stats.json").read_text())["invariant"]["holds"] is False
    run = Run.start("demo", cfg, kinds=("data", "works"))
    run.publish("data", [part], pa.schema([("id", pa.string())]))
    stats = run.finish({"x": 1}, records_read=2)
    assert stats["invariant"]["holds"] and json.loads((run.out_dir / "manifest.json").read_text())["status"] == \
        "complete"


def test_overwrite_clears_the_pipelines_own_kinds_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    for name in ("data", "works", "mine"):
        (out / name).mkdir(parents=True)
    Run.start("demo", RunConfig(output=str(out), overwrite=True), kinds=("data", "works"))
    assert sorted(p.name for p in out.iterdir()) == ["mine"]
