"""The fastText quality classifier: training with CV, NaN recovery, applying it as a filter."""
import json

from filters.quality import QualityConfig, QualityModel, QualityTrainSettings, quality, train_fasttext
from flows.config import load_config
from flows.quality_train import QualityTrainFlowConfig, quality_train_flow
from tests.conftest import shared_path


def test_train_on_real_labelled_pages_reports_cv_auc(tmp_path, prefect_harness):
    src = shared_path("data", "web", "dclm_quality_labelled.jsonl")
    cfg = load_config(QualityTrainFlowConfig, inputs=[str(src)], output=str(tmp_path / "model"),
                      sets=["train.folds=3", "train.embeddings=null"])
    result = quality_train_flow(cfg)
    rep = result["report"]
    assert rep["n"] == 499 and rep["positives"] == 272
    assert rep["cv_auc_fasttext"] > 0.75 and rep["cv_auc_model"] > 0.8
    model = QualityModel(tmp_path / "model")
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    scores = model.score([r["text"] for r in rows])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score([r["label"] == 1 for r in rows], scores) > 0.9  # it learned its training data
    d = quality(rows[0]["text"], QualityConfig(enabled=True, model=str(tmp_path / "model"), threshold=0.5), model)
    assert 0 <= d.scores["quality_score"] <= 1 and d.keep == (d.scores["quality_score"] >= 0.5)


def test_fasttext_nan_is_retried_with_a_smaller_learning_rate():
    texts = ["good clean prose about rivers and bread"] * 20 + ["buy cheap pills now now now"] * 20
    labels = [True] * 20 + [False] * 20
    # an absurd learning rate makes fastText diverge ("Encountered NaN"); training must still succeed
    model, lr_used = train_fasttext(texts, labels, QualityTrainSettings(lr=1e6, epoch=5, max_nan_retries=40))
    assert lr_used <= 1e6
    assert model.predict("good clean prose about rivers")[0][0] in ("__label__pos", "__label__neg")
