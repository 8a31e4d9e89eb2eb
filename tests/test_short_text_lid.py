"""The short-text language checkers (`checks.lid_checker`: fasttext / lingua / either, generators/sphinx_checks.py
`lid_field` over filters/short_text_lid.py) on real models: lid.176 and, where installed, lingua. Rows come from
tests/data/sphinx_lid_set.jsonl (correct translations and wrong-language outputs we wrote)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from generators.sphinx_checks import ChecksConfig, lid_field

SET = [json.loads(line) for line in
       (Path(__file__).resolve().parent / "data" / "sphinx_lid_set.jsonl").read_text(encoding="utf-8").splitlines()]
needs_lingua = pytest.mark.skipif(importlib.util.find_spec("lingua") is None,
                                  reason="lingua-language-detector not installed (the `lid` extra)")


def row(target: str, written_in: str, src: str) -> str:
    return next(r["text"] for r in SET if (r["target"], r["written_in"], r["src"]) == (target, written_in, src))


def test_fasttext_checker_thresholds_and_wrong_language(lid):
    cfg = ChecksConfig(lid_checker="fasttext")
    ok, top, p, _ = lid_field(row("de", "de", "S1"), "de", cfg, lid, 0.5)
    assert ok and top == "de" and p >= 0.5
    # a correct Swahili sentence scores low on lid.176: passes the low tier's threshold, not the global one
    sw = row("sw", "sw", "S3")
    ok_low, top, p, _ = lid_field(sw, "sw", cfg, lid, cfg.lid_tier_thresholds["low"])
    ok_hi, _, _, shown = lid_field(sw, "sw", cfg, lid, 0.5)
    assert ok_low and top == "sw" and not ok_hi and shown.startswith(f"sw({p:.2f})<0.5")
    ok, top, _, shown = lid_field(row("sw", "en", "S2"), "sw", cfg, lid, 0.15)
    assert ok is False and top == "en" and shown.startswith("en(") and ",sw(" in shown
    assert lid_field("Ja, gut.", "de", cfg, lid) == (None, None, None, "")  # under lid_min_letters: not judged


def test_english_segments_find_the_untranslated_clause(lid):
    from filters.short_text_lid import english_segments

    mixed = row("sw", "mixed-en", "S4")
    segs = english_segments(mixed, lid, 4, 0.8)
    assert segs and all(s in mixed for s, _ in segs) and "cools into clouds and falls back as rain or snow" in [
        s for s, _ in segs]
    assert english_segments(row("sw", "sw", "S4"), lid, 4, 0.8) == []


@needs_lingua
def test_lingua_checker(lid):
    from filters.short_text_lid import lingua_probabilities, lingua_supports

    assert lingua_supports("sw") and lingua_supports("no") and not lingua_supports("xx")
    probs = lingua_probabilities(row("de", "de", "S2"))
    assert max(probs, key=probs.get) == "de" and abs(sum(probs.values()) - 1) < 1e-6
    cfg = ChecksConfig(lid_checker="lingua")
    ok, top, _, shown = lid_field(row("sw", "sw", "S2"), "sw", cfg, lid, 0.15)
    assert ok and top == "sw" and shown.startswith("lingua:")
    ok, top, _, shown = lid_field(row("sw", "id", "S1|S2"), "sw", cfg, lid, 0.15)  # a neighbour language
    assert ok is False and top == "id" and shown.startswith("lingua:id(")


@needs_lingua
def test_either_passes_when_one_passes_and_fails_with_both_reasons(lid):
    ft, either = ChecksConfig(lid_checker="fasttext"), ChecksConfig(lid_checker="either")
    sw = row("sw", "sw", "S2")  # lid.176 misses it, lingua gets it
    assert lid_field(sw, "sw", ft, lid, 0.15)[0] is False
    ok, top, _, shown = lid_field(sw, "sw", either, lid, 0.15)
    assert ok and top == "sw" and shown.startswith("lingua:")
    ok, _, _, shown = lid_field(row("sw", "en", "S4"), "sw", either, lid, 0.15)
    assert ok is False and shown.startswith("en(") and " lingua:en(" in shown
    # over the low tier of the set: either passes every correct row one of the two passes, and catches English
    low = [r for r in SET if r["tier"] == "low"]
    for r in low:
        got = lid_field(r["text"], r["target"], either, lid, 0.15)[0]
        one = (lid_field(r["text"], r["target"], ft, lid, 0.15)[0]
               or lid_field(r["text"], r["target"], ChecksConfig(lid_checker="lingua"), lid, 0.15)[0])
        assert got == one, r
        if r["written_in"] == "en":
            assert got is False, r


def test_require_lingua_is_one_line_when_missing(monkeypatch):
    import filters.short_text_lid as stl

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lingua" else object())
    with pytest.raises(stl.LinguaMissing, match="pip install lingua-language-detector") as e:
        stl.require_lingua()
    assert "\n" not in str(e.value)
