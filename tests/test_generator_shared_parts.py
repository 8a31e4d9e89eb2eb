"""Shared parts a generator takes instead of keeping its own: span protection across fields
(`filters/protected_spans.py`), the one lid.176 loader (`filters/langid.py`), the one generation counter set
(`generators/stage.py`)."""
from __future__ import annotations

import pytest

from filters.protected_spans import INTACT, Span, has_prose, mask_fields, restore
from generators.stage import Counts, GenerationReport, ShardStats


def test_mask_fields_numbers_markers_across_fields_and_restore_reports_problems():
    masked = mask_fields({"question": ("Run `ls -la` in /tmp/x/ now.", None),
                          "answer": ("It lists 3 GB, see https://example.org.", [Span(3, 8, "label", "lists")])})
    (q, q_spans), (a, a_spans) = masked["question"], masked["answer"]
    assert q == "Run ⟦1⟧ in ⟦2⟧ now." and [p.kind for p in q_spans] == ["inline_code", "path"]
    # the second field's markers follow the first's; an extra span wins over the patterns
    assert a == "It ⟦3⟧ ⟦4⟧, see ⟦5⟧." and [p.kind for p in a_spans] == ["label", "number_unit", "url"]
    assert has_prose(q) and not has_prose("⟦1⟧ ⟦2⟧ .")
    r = restore("Es ⟦3⟧ ⟦4⟧ ⟦4⟧ Dateien, ⟦1⟧.", a_spans)
    assert r.text == "Es lists 3 GB 3 GB Dateien, ⟦1⟧." and not r.intact
    assert r.problems == ["⟦4⟧:duplicated", "⟦5⟧:missing", "⟦1⟧:unknown"]
    assert [(x["field"], x["marker"], x["status"]) for x in r.records("answer")] == [
        ("answer", "⟦3⟧", "restored"), ("answer", "⟦4⟧", "duplicated"), ("answer", "⟦5⟧", "missing")]
    ok = restore("Führe ⟦1⟧ in /tmp/x/ aus.", q_spans)  # the path copied as it was: verbatim, intact
    assert ok.intact and ok.problems == [] and set(ok.status.values()) <= set(INTACT)
    with pytest.raises(ValueError, match="marker characters"):
        mask_fields({"a": ("fine", None), "b": ("has ⟦1⟧ already", None)})


def test_one_lid_loader_one_cached_model(lid):
    from filters.langid import ModelNotFound, lid_model

    assert lid_model() is lid  # the conftest fixture loaded it the same way: one model per process and path
    with pytest.raises(ModelNotFound, match="^checks.lid_model_path: /nope/lid.ftz does not exist$"):
        lid_model("/nope/lid.ftz", "checks.lid_model_path")


def test_shard_stats_and_report_share_one_counter_set():
    shards = [ShardStats(requests=3, failed=1, completions=4, prompt_tokens=30, completion_tokens=12, backend_s=0.5,
                         part="p0"),
              ShardStats(requests=2, completions=2, prompt_tokens=20, completion_tokens=5, backend_s=0.25)]
    report = GenerationReport(requests=6, cached=1)
    for s in shards:
        report.add(s)
    assert isinstance(report, Counts) and isinstance(shards[0], Counts)
    d = report.as_dict()
    assert list(d)[:3] == ["requests", "cached", "generated"] and d["generated"] == 5 and d["failed"] == 1
    assert (d["completions"], d["prompt_tokens"], d["completion_tokens"], d["backend_s"]) == (6, 50, 17, 0.75)
    assert d["parts_written"] == 1 and "parts" not in d
    assert set(d) == {"requests", "cached", "generated", "failed", "completions", "prompt_tokens", "completion_tokens",
                      "wall_s", "backend_s", "parts_written", "cpu_util_pct", "gpu_util_pct", "model", "backend",
                      "requests_per_s", "tokens_per_s"}
