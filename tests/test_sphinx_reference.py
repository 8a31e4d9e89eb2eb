"""The sPhinX reference preset (configs/sphinx-reference.yaml) against what the paper states (arXiv 2407.09879v4):
each value with where it is stated; the README's comparison table lists the same rows."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import setting

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "configs" / "sphinx-reference.yaml"

# (our key, the paper's value, where it says so). README's comparison table lists the same rows.
REFERENCE = [
    ("selection.tier_counts", {"high": 100_000, "mid": 50_000, "low": 25_000},
     "dataset construction: 100K / 50K / 25K pairs per high / mid / low-resource language"),
    ("targets", None, "abstract: 50 languages (our table: 50)"),
    ("english_rows", True, "abstract: trained on 51 languages (the 50 + English)"),
    ("generation.backend.kind", "openai", "translation by GPT-4 (an API)"),
    ("generation.backend.model", "gpt-4", "translation by GPT-4"),
]


def preset():
    from flows.config import load_config
    from generators.sphinx import SphinxConfig

    return load_config(SphinxConfig, config_file=str(PRESET))


@pytest.mark.parametrize("key, value, where", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_preset_equals_the_reference(key, value, where):
    assert setting(preset(), key) == value, f"{key}: the paper says {value!r} ({where})"


def test_preset_languages_and_readme_table():
    cfg = preset()
    assert len(cfg.target_codes()) == 50 and "en" not in cfg.target_codes()
    assert {t: sum(s.tier == t for s in cfg.languages.values()) for t in ("high", "mid", "low")} == {
        "high": 12, "mid": 18, "low": 20}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("#### sphinx: the reference preset")[1].split("\n## ")[0]
    for key, _value, _where in REFERENCE:  # every row is in the README's comparison table
        assert f"`{key}`" in section, key
