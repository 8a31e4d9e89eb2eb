"""The refusal detector (filters/refusal.py): classes and reasons on hand-picked cases, and its measured quality on
the labelled set (tests/data/refusal_labels.jsonl) staying at what bench/results/refusal.txt reports."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from filters.refusal import RefusalConfig, detect_refusal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.mark.parametrize("text, level, reason", [
    ("I'm sorry, but I can't help with that.", "full", "apology"),
    ("I\u2019m sorry, but I can\u2019t help with cheating.", "full", "apology"),  # curly apostrophes
    ("As an AI language model, I cannot help you purchase products.", "full", "as_an_ai"),
    ("No.", "full", "terse_no"),
    ("I must decline this request.", "full", "decline"),
    ("Instead of spying on your partner, you could talk to them honestly.", "full", "alternatives_only"),
    ("I can't help with killing anything, but if you mean ending a program: find its pid with ps and run kill "
     "<pid>; kill -9 forces it.", "partial", "cannot_help"),
    ("Table salt is sodium chloride, NaCl, a cubic crystal. I won't provide instructions for making chloroform.",
     "partial", "cannot_help"),
    ("Find the process id with ps aux, then run kill <pid>.", "none", None),
    ("No, the Earth isn't flat. It is an oblate spheroid.", "none", None),
    ('You could write: "I\'m sorry, but I can\'t attend." and thank them.', "none", None),  # quoted request
    ("I can't stress enough how important backups are.", "none", None),
    ("", "none", None),
])
def test_classes_and_reasons(text, level, reason):
    r = detect_refusal(text)
    assert (r.level, r.reason) == (level, reason)
    assert r.refused == (level != "none")
    if level != "none":
        assert r.match  # the matched text is kept as evidence


def test_a_moralising_preface_is_not_an_answer():
    text = "Ransomware causes serious harm to hospitals and schools. For that reason, I can't write a tutorial."
    assert detect_refusal(text).level == "full"


def test_head_sentences_and_extra_patterns_are_config():
    late = "Here is some context. And more context here. I can't help with the rest."
    assert detect_refusal(late).level == "none"  # the refusal is in the third sentence
    assert detect_refusal(late, RefusalConfig(head_sentences=3)).level != "none"
    odd = "I'm going to pass on this one."
    assert detect_refusal(odd).level == "none"
    assert detect_refusal(odd, RefusalConfig(extra_patterns=[r"\bpass on this one\b"])).reason == "extra_0"


def test_measured_on_the_labelled_set_as_the_bench_reports():
    from bench.refusal import load, prf

    rows = load()
    assert len(rows) >= 100 and {r["label"] for r in rows} == {"full", "partial", "none"}
    for split, min_p, min_r in (("dev", 0.95, 0.95), ("holdout", 0.85, 0.65)):
        part = [r for r in rows if r["split"] == split]
        pred = [detect_refusal(r["completion"]).level != "none" for r in part]
        p, r, *_ = prf(pred, [x["label"] != "none" for x in part])
        assert p >= min_p and r >= min_r, (split, p, r)


def test_bad_label_file_is_named(tmp_path):
    from bench.refusal import load

    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"completion": "x", "label": "maybe"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="labels.jsonl: line 1"):
        load(bad)
