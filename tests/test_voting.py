"""generators/voting.py: consensus among K outputs, checked against rouge-score itself and on K > 3."""
from __future__ import annotations

import random

import pytest

from generators.voting import consensus, most_central, normalize_answer, pairwise_rouge_l


def test_pairwise_rouge_l_equals_rouge_score():
    from rouge_score import rouge_scorer

    rng = random.Random(7)
    words = "the cat sat on a mat running runs ran dog red green".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(6)]
    for stem in (True, False):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
        pairs = pairwise_rouge_l(texts, stem=stem)
        assert [(p["a"], p["b"]) for p in pairs] == [(i, j) for i in range(6) for j in range(i + 1, 6)]
        for p in pairs:
            want = scorer.score(texts[p["a"]], texts[p["b"]])["rougeL"].fmeasure
            assert abs(p["rougeL"] - want) < 1e-12, (texts[p["a"]], texts[p["b"]])


def test_most_central_ties_go_to_the_lowest_index():
    pairs = [{"a": 0, "b": 1, "rougeL": 0.5}, {"a": 0, "b": 2, "rougeL": 0.0}, {"a": 1, "b": 2, "rougeL": 0.5}]
    assert most_central(3, pairs) == 1
    flat = [{"a": a, "b": b, "rougeL": 0.2} for a in range(4) for b in range(a + 1, 4)]
    assert most_central(4, flat) == 0


def test_consensus_over_five_candidates():
    # two votes agree exactly (3 and 4); the proposer agrees with nobody: the first agreeing vote is kept
    c = consensus(["Berlin", "Paris is big", "Rome", "London.", "london"])
    assert (c.decided_by, c.chosen, c.output) == ("exact_votes", 3, "London.") and len(c.pairwise) == 10
    c = consensus(["Berlin", "Paris is big", "Rome", "London.", "london"], votes_agree_keep="generator")
    assert (c.decided_by, c.chosen, c.output) == ("exact_votes", 0, "Berlin")
    # no exact agreement: the most central of five, kept since every pair shares a word
    cands = ["a red cat", "the red cat sat", "a red cat sat down", "red cat", "one red dog"]
    c = consensus(cands, tau=0.0)
    pairs = pairwise_rouge_l([normalize_answer(x) for x in cands])
    assert c.decided_by == "rouge" and c.chosen == most_central(5, pairs) and c.output == cands[c.chosen]
    assert c.worst == min(p["rougeL"] for p in pairs) > 0


def test_consensus_refuses_fewer_than_two_candidates():
    with pytest.raises(ValueError, match="at least 2 candidates"):
        consensus(["only one"])
