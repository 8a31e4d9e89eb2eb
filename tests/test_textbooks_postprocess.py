"""Post-processing of completions and the educational-value grader/classifier, on real text with the real
language-ID model, MinHash and decontamination code and the real MiniLM."""
from __future__ import annotations

import json

import numpy as np
import pytest

from corpora.sample import sample_corpus_path
from generators.edu_grader import parse_edu_score, read_grades
from generators.textbooks import PostprocessConfig, postprocess, strip_boilerplate

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
    return {"id": f"g{i}", "text": text, "text_token_length": tokens, "finish_reason": "stop"}


def test_postprocess_keeps_reasons_and_columns(tmp_path):
    from generators.textbooks import fasttext_language

    bench = tmp_path / "bench.jsonl"
    item = ("The mitochondria is the powerhouse of the cell and produces most of the chemical energy needed to power "
            "the biochemical reactions of the cell through cellular respiration")
    bench.write_text(json.dumps({"question": item}) + "\n")
    rows = [
        row(0, "Sure! Here is the unit:\n\n" + PARA * 3),
        row(1, PARA * 3 + "Deltas grow where rivers meet calm seas."),  # near duplicate of row 0
        row(2, "Short.", tokens=3),
        row(3, "Les rivières transportent des sédiments des montagnes vers la mer, et l'eau lente dépose du sable "
               "et du limon dans les plaines." * 3),
        row(4, "Cells need energy. " + item + ". That is why biology classes start there. " * 2),
        row(5, "Volcanoes form where magma rises through the crust. Eruptions build cones of ash and lava, and "
               "some islands are the tops of volcanoes rising from the ocean floor. " * 3),
    ]
    cfg = PostprocessConfig(min_tokens=50, benchmarks={"toy": {"path": str(bench), "field": "question"}})
    kept, removed, counts = postprocess(rows, cfg, language=fasttext_language())
    reasons = {r["id"]: r["reason"] for r in removed}
    assert reasons == {"g1": "near_duplicate", "g2": "too_short", "g3": "language", "g4": "contaminated"} or \
        reasons == {"g0": "near_duplicate", "g2": "too_short", "g3": "language", "g4": "contaminated"}
    assert {r["id"] for r in kept} | set(reasons) == {f"g{i}" for i in range(6)}
    by_id = {r["id"]: r for r in kept + removed}
    assert by_id["g0"]["completion_unfiltered"].startswith("Sure!") and by_id["g0"]["text"].startswith("Rivers")
    assert by_id["g0"]["text_token_length"] < 200  # recounted (scaled) after stripping
    assert by_id["g0"]["dedup_cluster"] == by_id["g1"]["dedup_cluster"] == "g0"
    assert by_id["g5"]["dedup_cluster"] is None and by_id["g5"]["language"] == "en"
    assert by_id["g3"]["language"] == "fr" and by_id["g4"]["decontam_hit"] == "toy"
    assert counts["in"] == 6 and counts["out"] == 2 and counts["boilerplate_stripped"] == 1


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
