"""`flows run diachronic-train`: train the diachronic style classifier on the time slices `flows run diachronic`
cut. Wiring only: the logic is `filters/dating/steps.py` (settings: `filters/dating/settings.py`).

read slices/<start>_<end>/{train,dev,test}.txt -> fit + calibrate -> save model folder -> report (no card)
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from filters.dating import steps
from filters.dating.settings import StyleTrainSettings
from flows.config import RunConfig
from flows.registry import Pipeline
from flows.reporting import console, publish_artifact


class DiachronicTrainConfig(RunConfig):
    train: StyleTrainSettings = StyleTrainSettings()


@task(name="train-style-model", cache_policy=NO_CACHE)
def train_style(slices_dir: str, cfg: DiachronicTrainConfig, out: Path) -> dict:
    return steps.train_style(slices_dir, cfg.train, out)


@flow(name="diachronic-train", log_prints=True)
def diachronic_train_flow(config: DiachronicTrainConfig) -> dict:
    from corpora.manifest import now_iso
    from flows.run_report import write_model_report  # manifest/stats/report.html beside the model (no card)

    started = now_iso()
    out = Path(config.output or "output/diachronic-train").resolve()
    report = train_style(steps.slices_dir(config.inputs), config, out)
    write_model_report(out, "diachronic-train", config, report, started)
    msg = steps.train_message(report, config.train.chunk_words)
    console.print(msg)
    console.print(f"model: {out}  (use: flows run diachronic --input BOOKS --set style.model={out})")
    publish_artifact("diachronic-train-summary", f"# diachronic-train\n\n{msg}\n\nModel: `{out}`")
    return {"output": str(out), "report": report}


TRAIN_PIPELINE = Pipeline(
    name="diachronic-train",
    description="Train the diachronic style classifier (slice from vocabulary/spelling, calibrated) on time slices",
    config_model=DiachronicTrainConfig,
    flow=diachronic_train_flow,
    preflight=lambda cfg: steps.train_preflight(cfg.inputs),
)
