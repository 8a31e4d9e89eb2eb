"""`flows run quality-train`: train the fastText quality classifier (DCLM-style) on labelled pages and report
its cross-validated ROC-AUC; the dolma flow applies it with `filters.quality.model=<output>`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.manifest import now_iso
from corpora.readers import FieldMap, expand_inputs, read_records
from corpora.records import BadRecord
from filters.quality import QualityTrainSettings, train_quality_model
from flows.config import RunConfig
from flows.registry import Pipeline
from flows.reporting import console, publish_artifact, run_logger


class QualityTrainFlowConfig(RunConfig):
    train: QualityTrainSettings = QualityTrainSettings()


@task(name="load-labelled", cache_policy=NO_CACHE)
def load_labelled(cfg: QualityTrainFlowConfig) -> tuple[list[str], np.ndarray, int]:
    if not cfg.inputs:
        raise ValueError("quality-train needs --input labelled.jsonl (fields: text and a label)")
    t = cfg.train
    texts, labels, bad = [], [], 0
    for path in expand_inputs(cfg.inputs):
        for rec in read_records(path, FieldMap(text_field=t.text_field)):
            if isinstance(rec, BadRecord):
                bad += 1
                run_logger().warning("skipping %s %s: %s", rec.file, rec.location, rec.error)
                continue
            if t.label_field not in rec.metadata:
                raise ValueError(f"{path}: record {rec.id} has no label field '{t.label_field}'")
            texts.append(rec.text)
            labels.append(str(rec.metadata[t.label_field]) == t.positive_label)
    y = np.array(labels, dtype=int)
    run_logger().info("%d labelled pages (%d positive), %d unreadable", len(y), int(y.sum()), bad)
    return texts, y, bad


@task(name="train-quality-model", cache_policy=NO_CACHE)
def train_model(texts: list[str], y: np.ndarray, cfg: QualityTrainFlowConfig, out: Path) -> dict:
    return train_quality_model(texts, y, cfg.train, out)


@flow(name="quality-train", log_prints=True)
def quality_train_flow(config: QualityTrainFlowConfig) -> dict:
    out = Path(config.output or "output/quality-train").resolve()
    started = now_iso()
    texts, y, bad = load_labelled(config)
    report = train_model(texts, y, config, out)
    report["unreadable_records"] = bad
    msg = (f"cross-validated ROC-AUC ({report['folds']} folds, {report['n']} pages): fastText "
           f"{report['cv_auc_fasttext']:.3f}, stacked model {report['cv_auc_model']:.3f}")
    console.print(msg)
    console.print(f"model: {out}  (use: flows run dolma --set filters.quality.enabled=true "
                  f"--set filters.quality.model={out})")
    publish_artifact("quality-train-summary", f"# quality-train\n\n{msg}\n\nModel: `{out}`")
    from flows.run_report import write_model_report  # manifest/stats/report.html beside the model (no card)

    write_model_report(out, "quality-train", config, report, started)
    return {"output": str(out), "report": report}


PIPELINE = Pipeline(
    name="quality-train",
    description="Train the fastText quality classifier on labelled pages; report cross-validated ROC-AUC",
    config_model=QualityTrainFlowConfig,
    flow=quality_train_flow,
)
