"""The `unlearning-whp` steps, usable without Prefect: read the targets, build the anchors (file or round
`anchors`), label blocks with both models (one staged part per run key, reused on rerun). The generator
(`generators/whp_generator.py`, on the contract) and the reinforce flow (`flows/unlearning.py`) use them."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
from rich.table import Table

from corpora.atomic import atomic_write_json
from corpora.hashing import short_hash
from corpora.progress import no_progress
from corpora.shards import write_table_atomic
from generators import whp
from generators.finetune import data_hash, pick_device
from generators.reinforce import MANIFEST as REINFORCE_MANIFEST
from generators.whp_settings import (BLOCK_SCHEMA, LABEL_CONVENTION, REJECTED_SCHEMA, SAMPLE_ANCHORS, SAMPLE_TARGET,
                                     AnchorSettings, BlockSettings, ModelSettings)

_log = logging.getLogger("generators.whp")
REVIEW_FILE = "anchors.review.json"  # the anchors, published for review: edit and pass back with --set anchors.path=


def baseline_path(path: str | None) -> str:
    if path:
        return str(Path(path).expanduser().resolve())
    from generators.backends.local_models import dequantised_smollm2_dir

    return str(dequantised_smollm2_dir())


def check_model_dir(key: str, path: str | None) -> None:
    if path is None:
        from generators.backends.local_models import smollm2_gguf_path

        smollm2_gguf_path()  # ModelNotFound (a FileNotFoundError) says how to install it
    elif not (Path(path).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"{key}: {path} is not a Hugging Face model folder (no config.json)")


def preflight(baseline_model: str | None, reinforced_model: str | None, anchors: AnchorSettings, has_inputs: bool,
              log: logging.Logger = _log) -> None:
    """The one-line errors before an unlearning-whp run starts: model folders, anchors file (round `anchors`'
    backend: the generation flow's preflight)."""
    check_model_dir("baseline_model", baseline_model)
    if reinforced_model:
        check_model_dir("reinforced_model", reinforced_model)
        if not (Path(reinforced_model).expanduser() / REINFORCE_MANIFEST).is_file():
            log.warning("%s has no %s: not made by unlearning-reinforce (used as given)", reinforced_model,
                        REINFORCE_MANIFEST)
    if anchors.source == "file":
        if has_inputs and not anchors.path:
            raise whp.AnchorError("anchors.path: give the anchored-terms file for your targets (JSON "
                                  "{term: translation}), or --set anchors.source=llm to have a model propose one")
        whp.load_anchors(anchors.path or SAMPLE_ANCHORS)


def model_identity(path: str) -> str:
    """Path + (name, size, mtime) of its files: a retrained model in the same folder is a new identity."""
    p = Path(path)
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
    return short_hash(str(p), json.dumps(files))


def load_targets(inputs: list[str], text_field: str, id_field: str, max_docs: int | None,
                 warn: Callable[..., None] = _log.warning) -> tuple[list[whp.TargetDoc], list[dict], list[str]]:
    inputs = [str(p) for p in inputs] or [str(SAMPLE_TARGET)]
    docs, bad = whp.read_target_texts(inputs, text_field, id_field)
    if max_docs:
        docs = docs[:max_docs]
    for b in bad[:20]:
        warn("quarantined %s %s: %s", b.file, b.location, b.error)
    if not docs:
        raise ValueError(f"{', '.join(inputs)}: no target text to use ({len(bad)} item(s) quarantined)")
    seen: dict[str, int] = {}
    for d in docs:  # ids unique: a repeated id becomes <id>#n (n = 2, 3, ...)
        n = seen.get(d.id, 0) + 1
        seen[d.id] = n
        if n > 1:
            d.id = f"{d.id}#{n}"
    return docs, [b.as_row() for b in bad], inputs


def build_anchors(a: AnchorSettings, docs: list[whp.TargetDoc], rounds, log: Callable[[str], None] = _log.info
                  ) -> tuple[dict[str, list[str]], list[dict], dict]:
    """The anchored terms (file, or round `anchors` of `rounds`), their rows and report (the terms are published as
    `anchors.review.json` for review)."""
    texts = [d.text for d in docs]
    if a.source == "file":
        path = a.path or str(SAMPLE_ANCHORS)
        anchors = whp.load_anchors(path)
        rows = [{"term": t, "translation": tr, "source": f"file:{path}", "proposals": None} for t, tr in anchors.items()]
        report = {"source": "file", "path": path}
    else:
        from generators.backends.base import SamplingParams

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
    report.update(terms=len(anchors), unused_terms=sorted(t for t in anchors if not counts.get(t)),
                  review_file=REVIEW_FILE, sha=whp.anchors_hash(anchors))
    log(f"{len(anchors)} anchored terms ({report['source']}); {len(report['unused_terms'])} never occur in the "
        f"targets; for review: {REVIEW_FILE} in the output folder")
    return anchors, rows, report


def label_blocks(b: BlockSettings, models: ModelSettings, case_sensitive: bool, settings_key: str,
                 docs: list[whp.TargetDoc], anchors: dict[str, list[str]], baseline: str, reinforced: str,
                 work_dir: Path, log: Callable[[str], None] = _log.info, progress: Callable = no_progress) -> dict:
    """Blocks labelled with both models; one staged part per run key (`settings_key`: the run's settings that
    change the labels, then anchors, targets, models) under `<work_dir>/blocks/`, reused on rerun."""
    import torch

    key = short_hash(settings_key, whp.anchors_hash(anchors), str(case_sensitive),
                     data_hash([d.id + "\x00" + d.text for d in docs]), model_identity(baseline),
                     model_identity(reinforced))
    staged = Path(work_dir) / "blocks"
    part, rej, done = staged / f"{key}.parquet", staged / f"{key}.rejected.parquet", staged / f"{key}.json"
    if done.is_file() and part.is_file() and rej.is_file():
        log("blocks already labelled with this config, anchors, targets and models: reused")
        return {**json.loads(done.read_text()), "reused": True}
    if models.threads:
        torch.set_num_threads(models.threads)
    device = pick_device(models.device)
    t_load = time.perf_counter()
    scorer = whp.PairScorer(baseline, reinforced, device=device, dtype=models.dtype)
    load_s = time.perf_counter() - t_load
    tok = scorer.tokenizer
    pattern = whp.anchor_pattern(anchors, case_sensitive)
    blocks, rejected = [], []
    for d in docs:
        got = whp.split_blocks(d, tok, b.block_tokens, b.min_tokens)
        if not got:
            rejected.append({"id": d.id, "text": d.text, "source": d.source, "reason": "too_short",
                             "reason_detail": f"fewer than {b.min_tokens} tokens"})
        blocks += [whp.prepare_block(x, tok, anchors, pattern) for x in got]
    rows, totals = [], {"positions": 0, "masked": {}, "by_alpha": {}}
    t0 = time.perf_counter()
    with progress("label blocks", total=len(blocks), unit="blocks") as bar:
        for i in range(0, len(blocks), b.batch_size):
            batch = blocks[i:i + b.batch_size]
            for blk, per_alpha in zip(batch, scorer.label(batch, b.alphas, b.top_k, b.mask_renaming)):
                for res in per_alpha:
                    rows.append(block_row(blk, res, baseline, reinforced))
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


def block_row(blk: whp.Block, res: dict, baseline: str, reinforced: str) -> dict:
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


def training_rows(blocks: pa.Table, alpha: float) -> pa.Table:
    """The rows of one alpha (the training kind `data/`: one row per block, no conflicting labels) out of the
    labelled blocks (one row per block and alpha), in their order."""
    import pyarrow.compute as pc

    return blocks.filter(pc.equal(blocks["alpha"], pa.scalar(alpha, pa.float32())))


def blocks_invariant(read: int, labelled: dict, n_alphas: int, rows: Callable[[str], int]) -> dict:
    """targets read == documents with blocks + rejected + quarantined, one block row per block and alpha in
    blocks/ and one per block in data/ (the training alpha)."""
    return {"records_read": read, "docs_with_blocks": labelled["docs_with_blocks"],
            "rows_rejected": rows("rejected"), "rows_quarantine": rows("quarantine"),
            "blocks": labelled["blocks"], "alphas": n_alphas, "rows_blocks": rows("blocks"),
            "rows_data": rows("data"),
            "holds": labelled["docs_with_blocks"] + rows("rejected") + rows("quarantine") == read
            and rows("blocks") == labelled["blocks"] * n_alphas and rows("data") == labelled["blocks"]}


def summary_table(out_dir: Path, lab: dict, block_tokens: int) -> Table:
    t = Table(title=f"unlearning-whp: {out_dir}")
    for col in ("alpha", "positions labelled", "label != original token", "label != baseline argmax",
                "masked: renaming"):
        t.add_column(col, justify="right")
    for a, s in lab["by_alpha"].items():
        t.add_row(a, f"{s['labelled']:,}", f"{s['changed']:,}", f"{s['changed_vs_baseline']:,}",
                  f"{s['renaming_masked']:,}")
    t.caption = (f"{lab['blocks']} blocks of <= {block_tokens} tokens from {lab['docs_with_blocks']} "
                 f"documents on {lab['device']}: {lab['blocks_per_s']} blocks/s ({lab['tokens_per_s']} tokens/s, "
                 f"models loaded in {lab['load_s']} s{', reused' if lab.get('reused') else ''}); positions masked by "
                 f"alignment: " + ", ".join(f"{k} {v}" for k, v in lab["masked"].items()))
    return t


def reinforce_summary(report: dict, model_dir: Path, read: int, quarantined: int) -> tuple[dict, str]:
    """unlearning-reinforce's invariant (trained + quarantined == read) and its one-paragraph summary."""
    invariant = {"records_read": read, "docs_trained": report["documents"], "rows_quarantine": quarantined,
                 "holds": report["documents"] + quarantined == read}
    msg = (f"reinforced model: {model_dir} ({report['steps']} steps on {report['blocks']} blocks from "
           f"{report['documents']} documents, {report['steps_per_s']} steps/s on {report['device']}); loss "
           f"{report['loss_before']:.3f} -> {report['loss_after']:.3f}"
           f"{' (reused)' if report['reused'] else ''}\nuse: flows run unlearning-whp --reinforced_model {model_dir}")
    return invariant, msg


def whp_stats(docs: int, quarantined: int, inputs: list[str], anchor_report: dict, baseline: str, reinforced: str,
              reinforce_report: dict | None, labelled: dict, train_alpha: float, demo: dict,
              finetune_report: dict | None, model_dir: Path) -> dict:
    """stats.json of an unlearning-whp run (before the run's own accounting is added)."""
    return {"targets": {"documents": docs, "quarantined": quarantined, "inputs": inputs},
            "anchors": anchor_report, "baseline_model": baseline, "reinforced_model": reinforced,
            **({"reinforce": {k: v for k, v in reinforce_report.items() if k != "loss_curve"}}
               if reinforce_report else {}),
            "labelling": {k: v for k, v in labelled.items() if k not in ("part", "rejected_part")},
            "train_alpha": train_alpha, "demo": demo,
            **({"finetune": {"model": str(model_dir),
                             **{k: v for k, v in finetune_report.items() if k != "label_convention"}}}
               if finetune_report else {}),
            "label_convention": LABEL_CONVENTION}
