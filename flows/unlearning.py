"""`flows run unlearning-whp`: "Who's Harry Potter" generic-label blocks; `flows run unlearning-reinforce`: the
reinforced model they need (the baseline fine-tuned on the unlearn target). Wiring only: the logic is
`generators/whp.py`, `generators/whp_steps.py` (configs: `generators/whp_config.py`; settings and tables:
`generators/whp_settings.py`) and `generators/reinforce.py`.

unlearning-whp:       targets -> anchors (file, or round `anchors` through the generation layer, written for review)
                      -> reinforced model (given, or a small reinforce run into _work/reinforced/) -> blocks labelled
                      with both models in memory (cached part under _work/blocks/) -> publish data/ (the
                      training alpha, one row per block), blocks/ (every alpha, for analysis), anchors/,
                      rejected/, quarantine/ -> (finetune.enabled) the baseline fine-tuned on data/ into
                      model/ (HF folder + whp_finetune.json) -> report (blocks/s)
unlearning-reinforce: targets -> fine-tune -> model/ (HF folder + reinforce.json), loss/ -> report
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.plan import WORK_DIR
from corpora.records import QUARANTINE_SCHEMA
from corpora.shards import write_table_atomic
from flows.config import config_hash
from flows.registry import Pipeline
from flows.reporting import run_logger, stage_progress
from flows.scaffold import Run
from generators import whp, whp_steps as steps
from generators.reinforce import ReinforceSettings, reinforce
from generators.seeds import apply_demo
from generators.whp_config import BLOCKS_KEY_EXCLUDE, WHP_DEMO, ReinforceConfig, WhpConfig
from generators.whp_finetune import FinetuneSettings, finetune
from generators.whp_settings import (ANCHOR_SCHEMA, BLOCK_SCHEMA, LOSS_SCHEMA, REJECTED_SCHEMA, SAMPLE_ANCHORS,
                                     SAMPLE_TARGET)


@task(name="load-targets", cache_policy=NO_CACHE)
def load_targets(cfg: WhpConfig | ReinforceConfig) -> tuple[list[whp.TargetDoc], list[dict], list[str]]:
    return steps.load_targets(cfg.inputs, cfg.text_field, cfg.id_field, cfg.max_docs, run_logger())


@task(name="anchors", cache_policy=NO_CACHE)
def build_anchors(cfg: WhpConfig, docs: list[whp.TargetDoc], out_dir: Path) -> tuple[dict, list[dict], dict]:
    return steps.build_anchors(cfg.anchors, cfg.generation, docs, out_dir, run_logger())


@task(name="reinforce", cache_policy=NO_CACHE)
def reinforce_task(base: str, docs: list[whp.TargetDoc], settings: ReinforceSettings, target: Path) -> dict:
    return reinforce(base, [d.text for d in docs], settings, target, log=run_logger().info)


@task(name="label-blocks", cache_policy=NO_CACHE)
def label_blocks(cfg: WhpConfig, docs: list[whp.TargetDoc], anchors: dict[str, list[str]], baseline: str,
                 reinforced: str, out_dir: Path) -> dict:
    # train_alpha only picks which labelled rows become data/: a change of it reuses the labels
    key_cfg = cfg.model_copy(update={"blocks": cfg.blocks.model_copy(update={"train_alpha": None})})
    return steps.label_blocks(cfg.blocks, cfg.models, cfg.anchors.case_sensitive,
                              config_hash(key_cfg, exclude=BLOCKS_KEY_EXCLUDE), docs, anchors, baseline, reinforced,
                              out_dir, run_logger(), stage_progress)


@task(name="whp-finetune", cache_policy=NO_CACHE)
def finetune_task(base: str, rows: list[dict], alpha: float, settings: FinetuneSettings, target: Path) -> dict:
    return finetune(base, rows, alpha, settings, target, log=run_logger().info)


def _stage(run: Run, name: str, rows: list[dict], schema: pa.Schema) -> Path:
    path = run.out_dir / WORK_DIR / f"{name}.parquet"
    write_table_atomic(path, pa.Table.from_pylist(rows, schema=schema))
    return path


@flow(name="unlearning-whp", log_prints=True)
def whp_flow(config: WhpConfig) -> dict:
    demo = {}
    if not config.inputs:  # before the run starts, so its manifest and card show the config that ran
        config, demo = apply_demo(config, WHP_DEMO)
    run = Run.start("unlearning-whp", config, kinds=("data", "blocks", "anchors", "rejected", "quarantine", "model"))
    log = run_logger()
    if not config.inputs:
        log.info("no --input: the bundled sample (%s, anchors %s)%s", SAMPLE_TARGET.name, SAMPLE_ANCHORS.name,
                 f"; demo: {demo} (--set finetune.enabled=false for labels only)" if demo else "")
    docs, bad, inputs = load_targets(config)
    anchors, anchor_rows, anchor_report = build_anchors(config, docs, run.out_dir)
    baseline = steps.baseline_path(config.baseline_model)
    reinforce_report = None
    if config.reinforced_model:
        reinforced = str(Path(config.reinforced_model).expanduser().resolve())
    else:
        reinforced = str(run.out_dir / WORK_DIR / "reinforced")
        log.info("no reinforced_model given: fine-tuning the baseline on the targets first (%d steps) into %s "
                 "(or make one with `flows run unlearning-reinforce` and pass --reinforced_model DIR)",
                 config.reinforce.steps, reinforced)
        reinforce_report = reinforce_task(baseline, docs, config.reinforce, Path(reinforced))
    labelled = label_blocks(config, docs, anchors, baseline, reinforced, run.out_dir)
    train_part = steps.training_part(labelled["part"], config.blocks.train_alpha,
                                     run.out_dir / WORK_DIR / f"data-a{config.blocks.train_alpha:g}.parquet")
    run.publish("data", [train_part], BLOCK_SCHEMA)
    run.publish("blocks", [Path(labelled["part"])], BLOCK_SCHEMA)
    run.publish("anchors", [_stage(run, "anchors", anchor_rows, ANCHOR_SCHEMA)], ANCHOR_SCHEMA)
    run.publish("rejected", [Path(labelled["rejected_part"])], REJECTED_SCHEMA)
    run.publish("quarantine", [_stage(run, "quarantine", bad, QUARANTINE_SCHEMA)], QUARANTINE_SCHEMA)
    finetune_report = None
    if config.finetune.enabled:
        import pyarrow.parquet as pq

        finetune_report = finetune_task(baseline, pq.read_table(train_part).to_pylist(), config.blocks.train_alpha,
                                        config.finetune, run.out_dir / "model")
    invariant = steps.blocks_invariant(len(docs) + len(bad), labelled, len(config.blocks.alphas), run.rows)
    stats = steps.whp_stats(len(docs), len(bad), inputs, anchor_report, baseline, reinforced, reinforce_report,
                            labelled, config.blocks.train_alpha, demo, finetune_report, run.out_dir / "model")
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": p} for p in inputs],
                       summary=steps.summary_table(run.out_dir, labelled, config.blocks.block_tokens),
                       markdown="```\n" + json.dumps({"labelling": stats["labelling"], "invariant": invariant},
                                                     indent=2) + "\n```")
    return {"output": str(run.out_dir), "stats": stats}


def whp_preflight(cfg: WhpConfig) -> None:
    steps.preflight(cfg.baseline_model, cfg.reinforced_model, cfg.anchors, bool(cfg.inputs), cfg.generation,
                    run_logger())


WHP_PIPELINE = Pipeline(
    name="unlearning-whp",
    description="Who's Harry Potter generic-label blocks: anchors, baseline vs reinforced logits, several alphas",
    config_model=WhpConfig,
    flow=whp_flow,
    preflight=whp_preflight,
)


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
