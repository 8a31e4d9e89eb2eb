"""Out-of-range probabilities, shares, fractions, ratios and counts are refused by the config models: one line
naming the key, exit 2 (through the real CLI), and every pipeline's defaults still validate."""
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.config import ConfigError, load_config
from flows.registry import PIPELINES, get_pipeline

runner = CliRunner()

BAD = [  # (pipeline, key, out-of-range value)
    ("dolma", "filters.langid.threshold", "5"),
    ("dolma", "filters.langid.threshold", "-0.1"),
    ("dolma", "filters.langid.top_k", "0"),
    ("dolma", "filters.quality.threshold", "1.5"),
    ("dolma", "filters.toxicity.classifier_threshold", "-0.1"),
    ("dolma", "filters.toxicity.max_word_ratio", "2"),
    ("dolma", "filters.toxicity.min_word_hits", "-1"),
    ("dolma", "filters.gopher_quality.min_doc_words", "-1"),
    ("dolma", "filters.gopher_quality.max_bullet_lines_ratio", "1.1"),
    ("dolma", "filters.gopher_quality.max_non_alpha_words_ratio", "-1"),
    ("dolma", "filters.gopher_repetition.dup_line_frac", "3"),
    ("dolma", "filters.gopher_repetition.top_n_grams", "[[2, 1.5]]"),
    ("dolma", "filters.c4.min_num_sentences", "-2"),
    ("dolma", "filters.c4_badwords.keep_fraction", "1.5"),
    ("dolma", "filters.fineweb.line_punct_thr", "2"),
    ("dolma", "filters.fineweb.short_line_thr", "-1"),
    ("dolma", "filters.fineweb.char_duplicates_ratio", "1.01"),
    ("dolma", "filters.pii.max_matches", "-1"),
    ("dolma", "dedup.paragraph.false_positive_rate", "0"),
    ("dolma", "dedup.paragraph.false_positive_rate", "1"),
    ("dolma", "dedup.paragraph.overlap_threshold", "1.5"),
    ("dolma", "dedup.paragraph.expected_items", "0"),
    ("dolma", "dedup.minhash.verify_threshold", "1.2"),
    ("dolma", "dedup.minhash.num_bands", "0"),
    ("dolma", "dedup.decontam.threshold", "0"),
    ("dedup", "dedup.minhash.rows_per_band", "0"),
    ("quality-train", "train.folds", "1"),
    ("quality-train", "train.lr", "0"),
    ("mix", "tolerance", "1"),
    ("mix", "max_epochs", "0"),
    ("mix", "shares.web", "-0.5"),
    ("unlearning-split", "near_duplicates.verify_threshold", "2"),
    ("unlearning-split", "holdout_fraction", "1"),
    ("textbooks", "sampling.top_p", "0"),
    ("textbooks", "sampling.temperature", "-1"),
    ("textbooks", "generation.shard_size", "0"),
    ("textbooks", "generation.backend", "{kind: vllm, gpu_memory_utilization: 2}"),
]


def _show(pipeline: str, *sets: str):
    args = ["show", pipeline]
    for s in sets:
        args += ["--set", s]
    return runner.invoke(app, args)


@pytest.mark.parametrize("pipeline,key,value", BAD, ids=[f"{p}:{k}={v}" for p, k, v in BAD])
def test_out_of_range_is_one_line_naming_the_key_exit_2(pipeline, key, value):
    r = _show(pipeline, f"{key}={value}")
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: config key '"), r.stderr
    named = lines[0].split("'")[1]
    assert named.startswith(key), (key, lines[0])  # the key (or an item under it: top_n_grams.0.1)
    assert "Traceback" not in r.output


def test_langid_threshold_5_is_refused_by_run_before_any_work(tmp_path):
    r = runner.invoke(app, ["run", "dolma", "--output", str(tmp_path / "o"), "--set", "filters.langid.threshold=5"])
    assert r.exit_code == 2 and "config key 'filters.langid.threshold'" in r.stderr
    assert "less than or equal to 1" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("pipeline,key,value", [
    ("dolma", "filters.langid.threshold", "0"), ("dolma", "filters.langid.threshold", "1"),
    ("dolma", "filters.c4.min_num_sentences", "-1"), ("dolma", "filters.c4_badwords.keep_fraction", "1"),
    ("dolma", "filters.gopher_quality.max_symbol_word_ratio", "2"), ("dolma", "filters.fineweb.new_line_ratio", "3"),
    ("mix", "tolerance", "0"), ("textbooks", "sampling.temperature", "0"), ("textbooks", "sampling.top_p", "1"),
])
def test_edges_that_mean_something_are_accepted(pipeline, key, value):
    r = _show(pipeline, f"{key}={value}")
    assert r.exit_code == 0, r.output
    cur = yaml.safe_load(r.output)
    for part in key.split("."):
        cur = cur[part]
    assert cur == yaml.safe_load(value)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_default_validates(name):
    model = get_pipeline(name).config_model
    cfg = model()
    assert model.model_validate(cfg.model_dump(mode="json")) == cfg
    r = _show(name)
    assert r.exit_code == 0, r.output


def test_a_bare_scalar_for_a_list_key_is_a_one_item_list():
    model = get_pipeline("dolma").config_model
    cfg = load_config(model, sets=["filters.langid.languages=en"])
    assert cfg.filters.langid.languages == ["en"]
    cfg = load_config(model, sets=["filters.langid.languages=[en, fr]"])
    assert cfg.filters.langid.languages == ["en", "fr"]
    cfg = load_config(model, sets=["filters.langid.languages=null"])  # the key's own None still works
    assert cfg.filters.langid.languages is None
    cfg = load_config(model, sets=["inputs=a.jsonl"])
    assert cfg.inputs == ["a.jsonl"]
    with pytest.raises(ConfigError, match="filters.langid.threshold"):  # a scalar key is not wrapped
        load_config(model, sets=["filters.langid.threshold=[0.5]"])
    r = _show("dolma", "filters.langid.languages=de")
    assert r.exit_code == 0 and yaml.safe_load(r.output)["filters"]["langid"]["languages"] == ["de"]
