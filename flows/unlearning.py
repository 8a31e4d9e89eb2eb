"""`flows run unlearning-whp`: "Who's Harry Potter" generic-label blocks, a generator on the contract (the generator:
`generators/whp_generator.py`; the flow: `flows/generation.py`'s, like every generator's); `flows run
unlearning-reinforce`: the reinforced model they need (the baseline fine-tuned on the unlearn target). Wiring only:
the logic is `generators/whp.py`, `generators/whp_steps.py` (configs: `generators/whp_config.py`; settings and
tables: `generators/whp_settings.py`) and `generators/reinforce.py`.

unlearning-whp:       targets -> anchors (file, or round `anchors`, written for review) -> reinforced model (given,
                      or a small reinforce run into _work/reinforced/) -> blocks labelled with both models (cached
                      part under _work/blocks/) -> publish data/ (the training alpha, one row per block), blocks/
                      (every alpha, for analysis), anchors/, rejected/, quarantine/ -> (finetune.enabled) the
                      baseline fine-tuned on data/ into model/ (HF folder + whp_finetune.json) -> report (blocks/s)
unlearning-reinforce: targets -> fine-tune -> model/ (HF folder + reinforce.json), loss/ -> report
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.plan import WORK_DIR
from corpora.records import QUARANTINE_SCHEMA
from corpora.shards import write_table_atomic
from flows.generation import generator_flow, generator_pipeline
from flows.registry import Pipeline
from flows.reporting import run_logger
from flows.scaffold import Run
from generators import whp, whp_steps as steps
from generators.reinforce import ReinforceSettings, reinforce
from generators.whp_config import WHP_DEMO, ReinforceConfig, WhpConfig
from generators.whp_generator import GENERATOR as WHP_GENERATOR
from generators.whp_settings import LOSS_SCHEMA, SAMPLE_TARGET

whp_flow = generator_flow(WHP_GENERATOR)
WHP_PIPELINE = generator_pipeline(WHP_GENERATOR, whp_flow)


@task(name="load-targets", cache_policy=NO_CACHE)
def load_targets(cfg: ReinforceConfig) -> tuple[list[whp.TargetDoc], list[dict], list[str]]:
    return steps.load_targets(cfg.inputs, cfg.text_field, cfg.id_field, cfg.max_docs, run_logger().warning)


@task(name="reinforce", cache_policy=NO_CACHE)
def reinforce_task(base: str, docs: list[whp.TargetDoc], settings: ReinforceSettings, target: Path) -> dict:
    return reinforce(base, [d.text for d in docs], settings, target, log=run_logger().info)


def _stage(run: Run, name: str, rows: list[dict], schema: pa.Schema) -> Path:
    path = run.out_dir / WORK_DIR / f"{name}.parquet"
    write_table_atomic(path, pa.Table.from_pylist(rows, schema=schema))
    return path


@flow(name="unlearning-reinforce", log_prints=True)
def reinforce_flow(config: ReinforceConfig) -> dict:
    run = Run.start("unlearning-reinforce", config, kinds=("model", "loss", "quarantine"))
    if not config.inputs:
        run_logger().info("no --input: the bundled sample (%s)", SAMPLE_TARGET.name)
    docs, bad, inputs = load_targets(config)
    settings = ReinforceSettings.model_validate(config.model_dump(include=set(ReinforceSettings.model_fields)))
    base = steps.baseline_path(config.base_model)
    model_dir = run.out_dir / "model"
    report = reinforce_task(base, docs, settings, model_dir)
    run.publish("loss", [_stage(run, "loss", [{"step": i + 1, "loss": v} for i, v in enumerate(report["loss_curve"])],
                                LOSS_SCHEMA)], LOSS_SCHEMA)
    run.publish("quarantine", [_stage(run, "quarantine", bad, QUARANTINE_SCHEMA)], QUARANTINE_SCHEMA)
    invariant, msg = steps.reinforce_summary(report, model_dir, len(docs) + len(bad), len(bad))
    stats = {"model": str(model_dir), "inputs": inputs, **{k: v for k, v in report.items() if k != "settings"}}
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": p} for p in inputs], summary=msg,
                       markdown=f"# unlearning-reinforce\n\n{msg}")
    return {"output": str(run.out_dir), "stats": stats}


REINFORCE_PIPELINE = Pipeline(
    name="unlearning-reinforce",
    description="Fine-tune a causal LM on the unlearn target (the WHP reinforced model): HF folder + loss curve",
    config_model=ReinforceConfig,
    flow=reinforce_flow,
    preflight=lambda cfg: steps.check_model_dir("base_model", cfg.base_model),
)

__all__ = ["REINFORCE_PIPELINE", "WHP_DEMO", "WHP_PIPELINE", "WhpConfig", "reinforce_flow", "whp_flow"]
