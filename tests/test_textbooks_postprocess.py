"""Post-processing of completions and the educational-value grader/classifier, on real text with the real
language-ID model, MinHash and decontamination code and the real MiniLM."""
from __future__ import annotations

import json

import numpy as np
import pytest

from corpora.sample import sample_corpus_path
from generators.edu_grader import parse_edu_score, read_grades
from generators.textbooks import CleanupConfig, clean, strip_boilerplate

PARA = ("Rivers shape the land by carrying sediment from mountains to the sea. Fast water in steep valleys cuts "
        "deep channels, while slow water on plains drops sand and silt, building wide floodplains and deltas. ")


@pytest.mark.parametrize("raw, clean", [
    ("Sure! Here is the course unit you asked for:\n\n# Rivers\n\nRivers carry sediment.", "Rivers carry sediment."),
    ("Once upon a time, in a small village, there lived a girl.", "There lived a girl."),
    ("Title: The Water Cycle\nWater evaporates.", "Water evaporates."),
    ("**Understanding Rivers**\n\nRivers carry sediment.", "Rivers carry sediment."),
    ("In this unit, we will explore rivers. Rivers carry sediment.", "Rivers carry sediment."),
    ("Introduction:\nRivers carry sediment.", "Rivers carry sediment."),
    ("Rivers carry sediment. Once upon a time is a phrase.", "Rivers carry sediment. Once upon a time is a phrase."),
])
def test_strip_boilerplate(raw, clean):
    assert strip_boilerplate(raw) == clean


def row(i: int, text: str, tokens: int = 200) -> dict:
    return {"id": f"g{i}", "text": text, "completion_tokens": tokens, "finish_reason": "stop", "source": "textbooks",
            "request_id": f"r{i}", "parent_ids": [f"s{i}"], "round": "textbooks"}


def test_cleanup_strips_openings_recounts_and_rejects_short_or_truncated():
    cfg = CleanupConfig(min_tokens=50)
    kept, reason = clean(row(0, "Sure! Here is the unit:\n\n" + PARA * 3), cfg)
    assert reason is None and kept["completion_unfiltered"].startswith("Sure!") and kept["text"].startswith("Rivers")
    assert kept["text_token_length"] < 200  # recounted (scaled) after stripping
    assert clean(row(1, PARA * 3), cfg, token_count=lambda t: 7)[0]["text_token_length"] == 200  # unchanged text
    assert clean(row(2, "Short.", tokens=3), cfg)[1] == "too_short"
    assert clean(row(3, "# Only a title\n"), cfg)[1] == "too_short"  # empty once stripped
    truncated = {**row(4, PARA * 3), "finish_reason": "length"}
    assert clean(truncated, cfg)[1] is None and clean(truncated, CleanupConfig(drop_truncated=True))[1] == "truncated"


def test_generated_rows_go_through_the_dolma_document_steps(tmp_path, prefect_harness):
    """Language ID, MinHash near-dedup and n-gram decontamination of generated rows are the dolma steps, with the
    dolma config models (`filters.langid`, `dedup.minhash`, `dedup.decontam`)."""
    from flows.generation import postprocess
    from generators.textbooks import GENERATOR, TextbooksConfig

    bench = tmp_path / "bench.jsonl"
    item = ("The mitochondria is the powerhouse of the cell and produces most of the chemical energy needed to power "
            "the biochemical reactions of the cell through cellular respiration")
    bench.write_text(json.dumps({"question": item}) + "\n")
    rows = [
        row(0, PARA * 3 + "Deltas grow where rivers meet calm seas, slowly."),
        row(1, PARA * 3 + "Deltas grow where rivers meet calm seas."),  # near duplicate of row 0
        row(3, "Les rivières transportent des sédiments des montagnes vers la mer, et l'eau lente dépose du sable "
               "et du limon dans les plaines." * 3),
        row(4, "Cells need energy. " + item + ". That is why biology classes start there. " * 2),
        row(5, "Volcanoes form where magma rises through the crust. Eruptions build cones of ash and lava, and "
               "some islands are the tops of volcanoes rising from the ocean floor. " * 3),
    ]
    cfg = TextbooksConfig.model_validate({"dedup": {"decontam": {
        "enabled": True, "benchmarks": {"toy": {"path": str(bench), "field": "question"}}}}})
    kept, removed, extra, stats = postprocess.fn(rows, GENERATOR, cfg, tmp_path / "pp")
    reasons = {r["id"]: r["reason"] for r in removed}
    assert reasons == {"g1": "minhash", "g3": "langid", "g4": "decontam"}
    assert [r["id"] for r in kept] == ["g0", "g5"]
    by_id = {r["id"]: r for r in kept + removed}
    assert by_id["g1"]["reason_detail"] == "g0" and by_id["g0"]["dup_cluster_size"] == 2
    assert by_id["g5"]["language"] == "en" and by_id["g3"]["language"] == "fr"
    assert by_id["g4"]["contaminated_by"] == "toy" and by_id["g4"]["request_id"] == "r4"  # provenance kept
    assert {"language", "language_score", "dup_cluster_id", "contaminated_by"} <= {f.name for f in extra}
    assert stats["in"] == 5 and stats["out"] == 2 and stats["removed"] == {"minhash": 1, "langid": 1, "decontam": 1}
    # a rerun reuses both stages (their own resume keys) and gives the same rows
    done = [tmp_path / "pp" / "dedup" / "done.json", *(tmp_path / "pp" / "filters").glob("*/done.json")]
    stamps = [p.stat().st_mtime_ns for p in done]
    again = postprocess.fn(rows, GENERATOR, cfg, tmp_path / "pp")
    assert again[0] == kept and again[1] == removed
    assert len(done) == 2 and [p.stat().st_mtime_ns for p in done] == stamps
    # changed dedup settings redo the dedup stage only
    looser = cfg.model_copy(update={"dedup": cfg.dedup.model_copy(update={"minhash": cfg.dedup.minhash.model_copy(
        update={"enabled": False})})})
    third = postprocess.fn(rows, GENERATOR, looser, tmp_path / "pp")
    assert {r["id"] for r in third[1]} == {"g3", "g4"} and done[1].stat().st_mtime_ns == stamps[1]


@pytest.mark.parametrize("answer, score", [
    ("The extract is clear.\nEducational score: 3", 3),
    ("Total score: 4/5", 4),
    ("I'd give it **Educational score: 2**", 2),
    ("It earns 3 points. Educational score: 4", 4),  # the explicit line wins over a mention of points
    ("educational score - 5.", 5),
    ("3 out of 5", 3),
    ("Score: 7", None),  # out of range: not clipped into a grade
    ("Educational score: 2.5", None),
    ("Educational score: 100", None),
    ("No idea.", None),
    ("", None),
])
def test_parse_edu_score(answer, score):
    assert parse_edu_score(answer) == score


def test_read_grades_names_bad_rows(tmp_path):
    good = tmp_path / "g.csv"
    good.write_text("doc_id,score\na,3\nb,\nc,5\n")
    g = read_grades(good, known_ids={"a", "b"})
    assert (g.doc_ids, g.scores) == (["a", "b"], [3, None])
    bad = tmp_path / "g.jsonl"
    bad.write_text('{"doc_id": "a", "score": 3}\n{"doc_id": "b", "score": 9}\n')
    with pytest.raises(ValueError, match=r"g.jsonl: row 1 \(doc_id='b'\): score 9"):
        read_grades(bad)


def test_classifier_learns_grades_from_embeddings():
    """Grades from the bundled sample's document kinds (clean prose high, spam/boilerplate low): trained on half,
    the classifier must rank the held-out half."""
    pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")
    from sklearn.metrics import roc_auc_score

    from filters.embeddings import MiniLM
    from generators.edu_grader import EduClassifier

    docs = [json.loads(x) for x in sample_corpus_path().read_text().splitlines()]
    grade = {"clean": 4, "boilerplate": 1, "spam": 0}
    picked = [d for d in docs if d["metadata"]["kind"] in grade]
    picked = [d for d in picked if d["metadata"]["kind"] == "clean"][:30] + \
        [d for d in picked if d["metadata"]["kind"] != "clean"][:30]
    y = np.array([grade[d["metadata"]["kind"]] for d in picked], dtype=float)
    emb = MiniLM(max_tokens=128)([d["text"] for d in picked])
    train = np.arange(len(y)) % 2 == 0
    clf = EduClassifier.fit(emb[train], y[train])
    scores = clf.score(emb[~train])
    assert roc_auc_score(y[~train] >= 3, scores) > 0.9
    assert scores.min() >= 0 and scores.max() <= 5 and "cv_mae" in clf.report
    with pytest.raises(ValueError, match="two distinct grades"):
        EduClassifier.fit(emb[:5], np.full(5, 3.0))
