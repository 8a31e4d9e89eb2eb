"""The documents engine (`filters/documents.py`) and the one executor-and-wait helper (`filters.execution`), run
for real on datatrove's local executor (no Prefect)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.pipeline.base import PipelineStep

from filters.dedup.config import DedupConfig
from filters.documents import GeneratedRows, StagedShards, merge_generated, process_documents
from filters.execution import ExecutorConfig, run_and_wait
from filters.web_steps import WebFilters


class Marker(PipelineStep):
    """Rank r writes `<dir>/<r>.done`; rank `fail` raises instead."""
    name = "marker"

    def __init__(self, folder: str, fail: int = -1):
        super().__init__()
        self.folder, self.fail = folder, fail

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from pathlib import Path

        if rank == self.fail:
            raise ValueError(f"task {rank} broke")
        (Path(self.folder) / f"{rank}.done").write_text("ok")
        return data


def test_run_and_wait_waits_for_every_output_and_reports_progress(tmp_path):
    outs = [tmp_path / f"{r}.done" for r in range(3)]
    seen: list[int] = []
    left = run_and_wait([Marker(str(tmp_path))], 3, ExecutorConfig(workers=2), tmp_path / "logs",
                        outstanding=lambda: [str(p) for p in outs if not p.exists()], on_progress=seen.append)
    assert left == [] and all(p.exists() for p in outs)
    assert seen[-1] == 3 and seen == sorted(seen)


def test_run_and_wait_raises_the_executor_error_and_names_what_is_missing(tmp_path):
    outs = [tmp_path / f"{r}.done" for r in range(2)]
    with pytest.raises(Exception):  # datatrove's local executor fails the run when a task raised
        run_and_wait([Marker(str(tmp_path), fail=1)], 2, ExecutorConfig(), tmp_path / "logs",
                     outstanding=lambda: [str(p) for p in outs if not p.exists()])
    assert outs[0].exists() and not outs[1].exists()


def _docs(path, rows):
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("text", pa.string())])), path)
    return path


TEXT = "The river carries sand and silt from the mountains to the sea, and the slow water leaves it in the plains. "


def test_staged_shards_exact_dedup_every_row_accounted_and_resumed(tmp_path):
    a = _docs(tmp_path / "a.parquet", [{"id": "a1", "text": TEXT * 3}, {"id": "a2", "text": "Other words. " * 20}])
    b = _docs(tmp_path / "b.parquet", [{"id": "b1", "text": TEXT * 3}])  # exact duplicate of a1
    dedup = DedupConfig.model_validate({"url": {"enabled": False}, "paragraph": {"enabled": False},
                                        "minhash": {"enabled": False}})
    schema = pq.read_schema(a)
    src = StagedShards([[a], [b]], schema, tmp_path / "work", "k1")
    out = process_documents(src, None, dedup, ExecutorConfig())
    kept = [r["id"] for s in out.kept for p in s for r in pq.read_table(p).to_pylist()]
    rejected = [(r["id"], r["reason"]) for s in out.rejected for p in s for r in pq.read_table(p).to_pylist()]
    assert sorted(kept) == ["a1", "a2"] and rejected == [("b1", "exact")]
    assert out.stats["dedup"]["exact"]["removed"] == 1 and {f.name for f in out.added} >= {"dup_cluster_id"}
    done = tmp_path / "work" / "done.json"
    mtime = done.stat().st_mtime_ns
    again = process_documents(src, None, dedup, ExecutorConfig())  # same inputs and key: reused, not rerun
    assert done.stat().st_mtime_ns == mtime and again.kept == out.kept


def test_generated_rows_dedup_keeps_provenance_and_order(tmp_path):
    rows = [{"id": "g0", "text": TEXT * 3, "source": "round-a"}, {"id": "g1", "text": "Other words. " * 20,
                                                                 "source": "round-b"},
            {"id": "g2", "text": TEXT * 3, "source": "round-c"}]  # g2: exact duplicate of g0
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
    filters = WebFilters.model_validate({k: {"enabled": False} for k in WebFilters.model_fields})
    exact = DedupConfig.model_validate({k: {"enabled": False} for k in ("url", "paragraph", "minhash")})
    out = process_documents(GeneratedRows(rows, schema, tmp_path / "pp", "f", "d"), filters, exact, ExecutorConfig())
    kept, rejected, stats = merge_generated(rows, out)
    assert [(r["id"], r["source"]) for r in kept] == [("g0", "round-a"), ("g1", "round-b")]
    assert [(r["id"], r["source"], r["reason"]) for r in rejected] == [("g2", "round-c", "exact")]
    assert stats["in"] == 3 and stats["out"] == 2 and stats["removed"] == {"exact": 1} and "filters" not in stats
    assert (tmp_path / "pp" / "generated.parquet").exists() and not (tmp_path / "pp" / "filters").exists()
