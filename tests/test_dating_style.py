"""Style classifier: trained on time-labelled slices, calibrated probabilities, save/load by local path."""
import pytest

from filters.dating.periods import Slice, slice_of
from filters.dating.style import StyleModel, StyleModelError, train_style_model, word_chunks
from tests.conftest import shared_path

OLD = ("I shew'd him the connexion between the publick good and the musick of the antient choir , and he "
       "did not chuse to stay ; 'tis an honour to-morrow ")
NEW = ("I showed him the connection between the public good and the music of the ancient choir , and he "
       "did not choose to stay ; okay , it is an honor tomorrow ")


def _write_slices(root, texts):
    for name, words in texts.items():
        d = root / name
        d.mkdir(parents=True)
        for split, n in (("train", 40), ("dev", 10), ("test", 10)):
            (d / f"{split}.txt").write_text((words * n).strip())


def test_spelling_separates_two_periods_and_probabilities_are_calibrated(tmp_path):
    _write_slices(tmp_path, {"1750_1820": OLD, "1910_1940": NEW})
    model = train_style_model(tmp_path, chunk_words=40)
    assert [s.name for s in model.slices] == ["1750_1820", "1910_1940"]
    old = model.predict_proba("He would not chuse to shew the musick of the antient publick choir " * 5)
    new = model.predict_proba("He would not choose to show the music of the ancient public choir " * 5)
    assert old["1750_1820"] > 0.6 and new["1910_1940"] > 0.6
    assert abs(sum(old.values()) - 1) < 1e-9
    assert model.metrics["test_chunk_accuracy"] == 1.0 and model.temperature > 0


def test_save_and_load_give_the_same_answers(tmp_path):
    _write_slices(tmp_path / "slices", {"1750_1820": OLD, "1910_1940": NEW})
    model = train_style_model(tmp_path / "slices", chunk_words=40)
    model.save(tmp_path / "model")
    again = StyleModel.load(tmp_path / "model")
    text = "the connexion and the musick " * 30
    assert again.predict_proba(text) == model.predict_proba(text)
    ev = again.evidence(text)
    assert ev.kind == "style" and ev.role == "dist" and set(ev.detail["slice_probs"]) == {"1750_1820", "1910_1940"}


def test_missing_model_and_data_are_clear_errors(tmp_path):
    with pytest.raises(StyleModelError, match="no style model here"):
        StyleModel.load(tmp_path)
    with pytest.raises(StyleModelError, match="slices folder does not exist"):
        train_style_model(tmp_path / "nope")
    (tmp_path / "1750_1820").mkdir()
    (tmp_path / "1750_1820" / "train.txt").write_text(OLD)
    with pytest.raises(StyleModelError, match="at least two"):
        train_style_model(tmp_path)


def test_short_text_gives_no_prediction(tmp_path):
    _write_slices(tmp_path, {"1750_1820": OLD, "1910_1940": NEW})
    model = train_style_model(tmp_path, chunk_words=40)
    assert model.predict_proba("") is None and model.evidence("   ") is None


def test_real_slices_small_model_beats_chance():
    slices_dir = shared_path("data", "gutenberg", "slices")
    model = train_style_model(slices_dir, max_train_words=12000, max_features=20000, max_eval_words=6000)
    assert len(model.slices) == 5
    # five slices: chance is 20% per chunk; neighbours dominate the errors
    assert model.metrics["test_chunk_accuracy"] > 0.3
    assert model.metrics["test_chunk_within_one_slice"] > 0.7


def test_word_chunks_and_slices():
    assert word_chunks("a b c d e f g", 3) == ["a b c", "d e f"]  # a tail under half a chunk is dropped
    assert word_chunks("a b c d e", 3) == ["a b c", "d e"]
    assert slice_of(1820) == Slice(1820, 1850) and slice_of(1940) == Slice(1910, 1940)
    assert slice_of(1749) is None and slice_of(1941) is None
