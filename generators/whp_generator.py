""""Who's Harry Potter" generic-label blocks as a generator on the contract (`flows run unlearning-whp`; the flow is
`flows/generation.py`'s, like every generator's).

targets (`read_seeds`: JSONL / Parquet / text / TOFU JSON arrays) -> anchors (file, or round `anchors`) ->
reinforced model (given, or a small reinforce run into `_work/reinforced/`) -> blocks labelled with both models
(cached part under `_work/blocks/`) -> tables data (the training alpha, one row per block), blocks (every alpha),
anchors, rejected + `anchors.review.json` -> (`finish`) the optional fine-tune of the baseline on data/ into
`model/`, the blocks x alphas row accounting and the summary.

Its rows are token blocks, not generated documents: `postprocess=False` (no filters / dedup); the schemas are
`generators/whp_settings.py`'s. The label logic is `generators/whp.py`, the steps `generators/whp_steps.py`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.progress import no_progress
from generators import whp_steps as steps
from generators.contract import Generator, GeneratorResult, Published
from generators.reinforce import reinforce
from generators.whp_config import WHP_DEMO, WhpConfig
from generators.whp_finetune import finetune
from generators.whp_settings import ANCHOR_SCHEMA, BLOCK_SCHEMA, REJECTED_SCHEMA, SAMPLE_ANCHORS, SAMPLE_TARGET


def read_targets(inputs: list[str], cfg: WhpConfig, warn: Callable[..., None]
                 ) -> tuple[list, list[dict], list[dict]]:
    """(target documents, quarantine rows, the inputs as the manifest lists them)."""
    docs, bad, paths = steps.load_targets(inputs, cfg.text_field, cfg.id_field, cfg.max_docs, warn)
    return docs, bad, [{"path": p} for p in paths]


def run(cfg: WhpConfig, docs: list, rounds) -> GeneratorResult:
    log = rounds.log
    if not cfg.inputs:
        log(f"no --input: the bundled sample ({SAMPLE_TARGET.name}, anchors {SAMPLE_ANCHORS.name})"
            + ("; --set finetune.enabled=false for labels only" if cfg.finetune.enabled else ""))
    anchors, anchor_rows, anchor_report = steps.build_anchors(cfg.anchors, docs, rounds, log)
    baseline = steps.baseline_path(cfg.baseline_model)
    reinforce_report = None
    if cfg.reinforced_model:
        reinforced = str(Path(cfg.reinforced_model).expanduser().resolve())
    else:
        reinforced = str(Path(rounds.work_dir) / "reinforced")
        log(f"no reinforced_model given: fine-tuning the baseline on the targets first ({cfg.reinforce.steps} "
            f"steps) into {reinforced} (or make one with `flows run unlearning-reinforce` and pass "
            "--reinforced_model DIR)")
        rounds.hold("reinforce")
        reinforce_report = reinforce(baseline, [d.text for d in docs], cfg.reinforce, Path(reinforced), log=log)
    rounds.hold("blocks")
    progress = no_progress
    if rounds.progress:
        from flows.reporting import stage_progress as progress  # the run's console bar
    labelled = steps.label_blocks(cfg.blocks, cfg.models, cfg.anchors.case_sensitive, cfg.labels_key(), docs,
                                  anchors, baseline, reinforced, Path(rounds.work_dir), log, progress)
    blocks = pq.read_table(labelled["part"], schema=BLOCK_SCHEMA)
    tables = {"data": steps.training_rows(blocks, cfg.blocks.train_alpha), "blocks": blocks,
              "anchors": pa.Table.from_pylist(anchor_rows, schema=ANCHOR_SCHEMA),
              "rejected": pq.read_table(labelled["rejected_part"], schema=REJECTED_SCHEMA)}
    return GeneratorResult(rows=[], tables=tables, files={steps.REVIEW_FILE: anchors},
                           stats={"documents": len(docs), "anchors": anchor_report, "baseline": baseline,
                                  "reinforced": reinforced, "reinforce": reinforce_report, "labelled": labelled})


def finish(cfg: WhpConfig, result: GeneratorResult, done: Published) -> tuple[dict, dict, Any, str]:
    """The optional fine-tune on data/ into model/, then stats, the blocks x alphas invariant and the summary."""
    s, out_dir, rows = result.stats, done.run.out_dir, done.run.rows
    finetune_report = None
    if cfg.finetune.enabled:
        done.rounds.hold("finetune")
        finetune_report = finetune(s["baseline"], result.tables["data"].to_pylist(), cfg.blocks.train_alpha,
                                   cfg.finetune, out_dir / "model", log=done.rounds.log)
    anchor_report = {**s["anchors"], "review_file": str(out_dir / steps.REVIEW_FILE)}
    labelled = s["labelled"]
    quarantined = rows("quarantine")
    invariant = steps.blocks_invariant(s["documents"] + quarantined, labelled, len(cfg.blocks.alphas), rows)
    stats = steps.whp_stats(s["documents"], quarantined, [i["path"] for i in done.inputs], anchor_report,
                            s["baseline"], s["reinforced"], s["reinforce"], labelled, cfg.blocks.train_alpha,
                            done.demo, finetune_report, out_dir / "model")
    markdown = "```\n" + json.dumps({"labelling": stats["labelling"], "invariant": invariant}, indent=2) + "\n```"
    return stats, invariant, steps.summary_table(out_dir, labelled, cfg.blocks.block_tokens), markdown


def preflight(cfg: WhpConfig) -> None:
    steps.preflight(cfg.baseline_model, cfg.reinforced_model, cfg.anchors, bool(cfg.inputs))


GENERATOR = Generator(
    name="unlearning-whp",
    description="Who's Harry Potter generic-label blocks: anchors, baseline vs reinforced logits, several alphas",
    config=WhpConfig,
    fields=[],
    rounds=("anchors",),
    run=run,
    demo=WHP_DEMO,
    sample_inputs=lambda cfg: [str(SAMPLE_TARGET)],
    needs_inputs=False,
    kinds=("blocks", "anchors", "model"),
    preflight=preflight,
    postprocess=False,
    read_seeds=read_targets,
    finish=finish,
    uses_rounds=lambda cfg: cfg.anchors.source == "llm",
    demo_in_card=True,
)
