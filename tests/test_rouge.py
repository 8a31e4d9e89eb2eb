"""The one ROUGE-L (`filters.rouge`) equals rouge-score's `RougeScorer(["rougeL"])` fmeasure, with and without the
stemmer, on 1,000 pairs drawn from the Self-Instruct seed tasks (shared data), one text at a time and all pairs of
a candidate set at once."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from filters.rouge import lcs_length, rouge_l_pairs, rouge_l_text, tokenize

SEEDS = Path("/work/shared/data/instruct/self_instruct_seed_tasks.jsonl")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")


def _seed_texts() -> list[str]:
    if not SEEDS.exists():
        pytest.skip(f"shared seed tasks absent: {SEEDS}")
    texts = []
    for line in SEEDS.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        texts.append(task["instruction"])
        for inst in task["instances"]:
            texts += [t for t in (inst["input"], inst["output"]) if t]
    return texts


@pytest.mark.parametrize("stem", [False, True])
def test_equals_rouge_score_on_1000_seed_pairs(stem):
    texts = _seed_texts()
    rng = random.Random(7)
    edited = []
    for t in texts:  # near copies: a word dropped and two swapped, so scores near the 0.7 threshold occur
        w = t.split()
        if len(w) > 3:
            del w[rng.randrange(len(w))]
            i, j = rng.randrange(len(w)), rng.randrange(len(w))
            w[i], w[j] = w[j], w[i]
        edited.append(" ".join(w))
    pool = texts + edited
    rng = random.Random(28)  # 500 random pairs, and 500 texts against their near copy
    pairs = [(rng.randrange(len(pool)), rng.randrange(len(pool))) for _ in range(500)]
    pairs += [(k, len(texts) + k) for k in (rng.randrange(len(texts)) for _ in range(500))]
    assert len(pairs) == 1000
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
    ref = np.array([scorer.score(pool[i], pool[j])["rougeL"].fmeasure for i, j in pairs])
    one = np.array([rouge_l_text(pool[j], pool[i], stem=stem) for i, j in pairs])
    I, J = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    batch = rouge_l_pairs(pool, I, J, stem=stem)
    assert np.abs(one - ref).max() < 1e-9
    assert np.abs(batch - ref).max() < 1e-9
    assert (ref > 0.7).sum() > 50 and (ref == 0).sum() > 0  # the draw covers both ends


def test_tokenizer_is_rouge_score_s():
    from rouge_score import tokenize as rs
    from nltk.stem import porter

    texts = _seed_texts()[:300] + ["İstanbul's café — naïve Straße", "", "  ", "中文 指令", "A-B_c 12.5%"]
    st = porter.PorterStemmer()
    for t in texts:
        assert tokenize(t) == rs.tokenize(t, None)
        assert tokenize(t, stem=True) == rs.tokenize(t, st)


def test_edge_cases_and_long_texts():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    texts = ["", "!!!", "a b c", "c b a", "the " * 300 + "end", "end " + "the " * 299, "中文"]
    n = len(texts)
    I, J = np.array([i for i in range(n) for j in range(n)]), np.array([j for i in range(n) for j in range(n)])
    ref = [scorer.score(texts[i], texts[j])["rougeL"].fmeasure for i, j in zip(I, J)]
    assert rouge_l_pairs(texts, I, J).tolist() == pytest.approx(ref, abs=1e-12)
    assert rouge_l_pairs(texts, [], []).shape == (0,)
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4
