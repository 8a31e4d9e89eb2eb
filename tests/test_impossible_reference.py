"""Impossible Distillation against the reference (jaehunjung1/impossible-distillation at 982cc3fa): the reference
preset's settings value by value (file and line, the README's comparison table lists the same rows), the two filter
orders on a constructed case (each result recomputed from the scores), the symmetric critic's skipped reverse call,
numerizer and the spaCy fallback, and the bounds of the config fields."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import setting

from filters.pairs import (
    ORDERS,
    SYMMETRIC_REV,
    GraphDedupConfig,
    PairFilterConfig,
    filter_pairs,
    length_ratios,
    numbers_in,
    numbers_numerizer,
    numbers_ok,
    pair_indices,
)
from filters.rouge import rouge_l_pairs
from tests.test_impossible_distillation import TableCritic

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "configs" / "impossible-distillation-reference.yaml"

# (our key, the reference's value, where the reference sets it). README's comparison table lists the same rows.
REFERENCE = [
    ("contexts_sampling.n", 100, "pipeline/orig.py:54"),
    ("contexts_sampling.max_tokens", 150, "pipeline/orig.py:54"),
    ("contexts_sampling.top_p", 0.9, "pipeline/orig.py:55"),
    ("contexts_sampling.temperature", 1.0, "pipeline/orig.py:55"),
    ("contexts_sampling.banned_substrings", ["\n"], "pipeline/orig.py:50 (bad_words \\n\\n, \\n)"),
    ("candidates_sampling.n", 100, "pipeline/con.py:60"),
    ("candidates_sampling.max_tokens", 100, "pipeline/con.py:60"),
    ("candidates_sampling.top_p", 0.9, "pipeline/con.py:61"),
    ("candidates_sampling.temperature", 0.5, "pipeline/con.py:61"),
    ("candidates_sampling.no_repeat_ngram_size", 3, "pipeline/con.py:61"),
    ("candidates_sampling.banned_substrings", ["\n"], "pipeline/con.py:56"),
    ("shuffle_seed", 3, "generate_conditional.py:59"),
    ("sentences.spacy_model", "en_core_web_sm", "pipeline/orig.py:21, con.py:22, filter.py:37"),
    ("paraphrase.min_len_ratio", 0.8, "pipeline/filter.py:29"),
    ("paraphrase.max_len_ratio", 1.5, "pipeline/filter.py:30"),
    ("paraphrase.nli_fwd", 0.75, "pipeline/filter.py:31"),
    ("paraphrase.nli_rev", 0.75, "pipeline/filter.py:32"),
    ("paraphrase.max_rougeL", 0.75, "pipeline/filter.py:33"),
    ("paraphrase.order", "reference", "pipeline/filter.py:87-118 (filter_bootstrap)"),
    ("paraphrase.numbers", "new_in_orig", "pipeline/filter.py filter_number"),
    ("paraphrase.number_parser", "numerizer", "pipeline/filter.py:10, numerize"),
    ("graph.enabled", True, "pipeline/filter.py:110"),
    ("graph.edge", "either", "pipeline/filter.py remove_duplicates (nx.Graph over permutations)"),
    ("graph.keep", "lowest_nli_rev", "pipeline/filter.py remove_duplicates (min reverse_nli_score)"),
    ("critic.kind", "nli", "pipeline/filter.py:23-27"),
    ("critic.max_length", 512, "pipeline/filter.py:25"),
    ("critic.minilm_threshold", None, "(no MiniLM in the reference)"),
    ("self_distill.sampling.n", 10, "pipeline/con.py:79"),
    ("self_distill.sampling.max_tokens", 100, "pipeline/con.py:79"),
    ("self_distill.sampling.top_p", 0.9, "pipeline/con.py:80"),
    ("self_distill.sampling.temperature", 0.7, "pipeline/con.py:80"),
    ("self_distill.sampling.no_repeat_ngram_size", 3, "pipeline/con.py:80"),
    ("self_distill.sampling.banned_substrings", [], "pipeline/con.py:78-82 (no bad words at stage > 0)"),
]
MODELS = {"generation.backend.model": "gpt2-xl",  # pipeline/orig.py:31-35, con.py:27-31
          "critic.nli_model": "roberta-large-wanli",  # pipeline/filter.py:23
          "self_distill.student": "t5-v1_1-large"}  # pipeline/con.py:43


def preset():
    from flows.config import load_config
    from generators.impossible_distillation import ImpossibleConfig

    return load_config(ImpossibleConfig, config_file=str(PRESET))


@pytest.mark.parametrize("key, value, where", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_preset_equals_the_reference(key, value, where):
    assert setting(preset(), key) == value, f"{key}: the reference sets {value!r} ({where})"


def test_preset_models_and_readme_table():
    cfg = preset()
    for key, name in MODELS.items():
        assert Path(setting(cfg, key)).name == name
    assert cfg.generation.backend.kind == "transformers"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, value, where in REFERENCE:  # every row is in the README's comparison table
        assert f"`{key}`" in readme, key
    # the student's prompt is the reference's stage > 0 input (pipeline/con.py:105-109)
    from generators.impossible_distillation import STUDENT_PROMPTS

    assert STUDENT_PROMPTS["paraphrase"].format(x_l="X.", x="Y.") == (
        "Given context, paraphrase the last sentence.\nContext: X. \nSentence: Y.")


# ---- the filter order ------------------------------------------------------------------------------------------
ORDER_TEXTS = ["Officials approved the new budget plan on Monday night.",
               "Officials backed 3 budget plans on Monday night.",
               "After a long debate on Monday night, the council's members finally passed it."]


def test_the_two_orders_differ_and_each_is_right():
    """(0,1) adds a number; (1,2) is too long; the critic scores every pair 0.9 except 1 => 0 (0.8), no graph
    edges. Reference: NLI passes (0,1) and (0,2), the dedup of y_orig node 0 keeps the lower reverse score (0,1),
    which then fails numbers: nothing is kept. Ours: numbers drops (0,1) first, (0,2) is alone in its component and
    is kept."""
    T = ORDER_TEXTS
    I, J = pair_indices(3)
    ratio, nums, rouge = length_ratios(T, I, J), numbers_ok(T, I, J), rouge_l_pairs(T, I, J)
    cfg = PairFilterConfig()
    length_ok = (ratio >= cfg.min_len_ratio) & (ratio <= cfg.max_len_ratio)
    assert length_ok.tolist() == [True, True, False] and nums.tolist() == [False, True, True]
    assert (rouge <= cfg.max_rougeL).all()
    critic = TableCritic(T, {(1, 0): 0.8}, set())
    rev = {(0, 1): 0.8, (0, 2): 0.9}
    # reference: after length and NLI both ways, node 0's component {(0,1), (0,2)} keeps the lowest reverse score
    keep = min(rev, key=rev.get)
    assert keep == (0, 1)
    expect_ref = ["numbers" if not nums[0] else None, "nli_graph", "length_ratio"]
    ref = filter_pairs(T, cfg.model_copy(update={"order": "reference"}), critic, GraphDedupConfig())
    assert ref.reason == expect_ref and not ref.passed.any()
    assert ref.entered["nli_fwd"] == int(length_ok.sum()) == 2
    # ours: length, then numbers (drops (0,1)), ROUGE-L, NLI on (0,2) only, the graph sees one pair
    ours = filter_pairs(T, cfg, critic, GraphDedupConfig())
    assert ours.reason == ["numbers", None, "length_ratio"]
    assert ours.entered["nli_fwd"] == int((length_ok & nums).sum()) == 1
    assert ours.nli_rev[1] == pytest.approx(0.9) and np.isnan(ours.nli_fwd[0])
    assert list(ours.entered) == list(ORDERS["cheap_first"]) and list(ref.entered) == list(ORDERS["reference"])


def test_symmetric_critic_skips_the_reverse_call():
    from filters.nli import EmbeddingCritic

    calls = []
    vec = {t: np.eye(3)[k] * 0.6 + 0.8 * np.ones(3) / np.sqrt(3) for k, t in enumerate(ORDER_TEXTS)}

    def embed(texts):
        calls.append(list(texts))
        v = np.stack([vec[t] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    critic = EmbeddingCritic(embed=embed, edge_threshold=0.99)
    off = PairFilterConfig(min_len_ratio=None, max_len_ratio=None, numbers="off", max_rougeL=None, nli_fwd=0.5,
                           nli_rev=0.5)
    s = filter_pairs(ORDER_TEXTS, off, critic, GraphDedupConfig(enabled=False))
    assert len(calls) == 1 and critic.calls == 3  # forward only: 3 pairs
    assert np.array_equal(s.nli_fwd, s.nli_rev) and s.rev_note == SYMMETRIC_REV
    a, b = [ORDER_TEXTS[i] for i in s.I], [ORDER_TEXTS[j] for j in s.J]
    assert np.allclose(critic.entailment(b, a), s.nli_fwd)  # what the skipped call would have returned
    nonsym = filter_pairs(ORDER_TEXTS, off, TableCritic(ORDER_TEXTS, {}, set()), GraphDedupConfig(enabled=False))
    assert nonsym.rev_note is None


def test_minilm_threshold_is_the_calibrated_one_in_the_filters():
    from flows.config import load_config
    from generators.impossible_distillation import MINILM_CALIBRATED, ImpossibleConfig, pair_filter

    cfg = load_config(ImpossibleConfig)
    assert cfg.critic.minilm_threshold == MINILM_CALIBRATED
    f = pair_filter(cfg)
    assert f.nli_fwd == f.nli_rev == MINILM_CALIBRATED and cfg.paraphrase.nli_fwd == 0.75
    summ = pair_filter(cfg.model_copy(update={"mode": "summary"}))
    assert summ.nli_fwd == MINILM_CALIBRATED and summ.nli_rev is None  # off stays off
    nli = cfg.model_copy(update={"critic": cfg.critic.model_copy(update={"kind": "nli"})})
    assert pair_filter(nli).nli_fwd == 0.75
    report = (ROOT / "bench/results/impossible-critics.txt").read_text()
    assert f"chosen on the calibration half: {MINILM_CALIBRATED:.3f}" in report


# ---- numbers and sentences -------------------------------------------------------------------------------------
def test_numerizer_numbers_and_spacy_fallback():
    pytest.importorskip("numerizer")
    from filters.sentences import split_sentences, splitter

    assert numbers_numerizer("He bought three apples and twenty-five pears.") == {"3", "25"}
    assert numbers_numerizer("It cost 1,200 dollars.") == numbers_in("It cost 1,200 dollars.") == {"1200"}
    # where the two differ: numerizer reads "half" as a fraction of the number before it, and ordinals
    assert numbers_numerizer("In 2019 half the staff left.") != numbers_in("In 2019 half the staff left.")
    T = ["Three men were held on Monday.", "Police held 3 men on Monday.", "Police held 4 men."]
    I, J = pair_indices(3)
    assert numbers_ok(T, I, J, extract=numbers_numerizer).tolist() == numbers_ok(T, I, J).tolist()
    # no spaCy model installed offline: the name falls back to the rule sentencizer, the same sentences
    text = "The U.S. council met on Monday. Mr. Smith spoke for 2.5 hours! Was it enough?"
    import spacy

    if not spacy.util.is_package("en_core_web_sm"):
        assert splitter("en_core_web_sm") == "sentencizer"
        assert split_sentences(text, "en_core_web_sm") == split_sentences(text)
    assert splitter(None) == "sentencizer"


def test_numerizer_parser_needs_the_package(monkeypatch):
    import importlib.util

    from flows.config import load_config
    from generators.impossible_distillation import ImpossibleConfig, _preflight

    cfg = load_config(ImpossibleConfig, sets=["paraphrase.number_parser=numerizer"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "numerizer" else real(n, *a))
    with pytest.raises(ModuleNotFoundError, match="numerizer"):
        _preflight(cfg)


# ---- bounds ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, field, bad", [
    ("PairFilterConfig", "nli_fwd", 1.5), ("PairFilterConfig", "nli_rev", -0.1), ("PairFilterConfig", "max_rougeL", 2),
    ("PairFilterConfig", "min_len_ratio", -1), ("PairFilterConfig", "max_len_ratio", 1000),
    ("CriticConfig", "edge_threshold", 1.1), ("CriticConfig", "minilm_threshold", -0.5),
    ("SelfDistillConfig", "stages", 0), ("SelfDistillConfig", "contexts", 0), ("PrefixConfig", "count", 0)])
def test_config_bounds(model, field, bad):
    import filters.pairs as fp
    import generators.impossible_distillation as gi

    cls = getattr(gi, model, None) or getattr(fp, model)
    with pytest.raises(ValidationError, match=field):
        cls(**{field: bad})


def test_sampling_probability_bounds():
    from generators.impossible_distillation import DistillSampling

    with pytest.raises(ValidationError, match="top_p"):
        DistillSampling(top_p=1.5)
