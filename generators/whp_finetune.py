"""The third step of "Who's Harry Potter": fine-tune the baseline on the original text with the generic labels of
one alpha (`data/` of `unlearning-whp`), giving the paper's unlearned model.

The loop is `generators.finetune.train_steps` (the one seeded trainer): each example is a block's `input_ids` with
its `label_ids` as the labels, passed as they are (the label convention of `generators.whp_settings`: no BOS is
added, labels aligned with input_ids Hugging Face style, the model shifts; -100 where masked, the first position
always). Batches are drawn in a seeded order (a fresh permutation of the blocks per epoch), `steps` AdamW steps.
The folder written is a plain HF model folder (safetensors + tokenizer) with `whp_finetune.json`: base model,
labels' sha256, alpha, steps, settings, loss curve. It is built beside its target and renamed into place; a rerun
with the same base, labels and settings reuses it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from pydantic import Field

from corpora.config import StrictModel
from generators.finetune import data_hash, pick_device, reusable, save_model_atomic, train_steps
from generators.whp_settings import LABEL_CONVENTION

MANIFEST = "whp_finetune.json"


class FinetuneSettings(StrictModel):
    enabled: bool = Field(False, description="fine-tune the baseline on data/ into <output>/model/; on for the "
                                             "bundled sample (its demo), off for your own targets unless set (a "
                                             "long target takes long on CPU; README)")
    steps: int = Field(10, ge=1, description="optimizer steps (blocks drawn in a seeded order, epoch after epoch)")
    batch_size: int = Field(2, ge=1, description="blocks per step")
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(2, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    device: str = Field("auto", description="auto: cuda when available, else cpu")
    dtype: str = Field("float32", description="training dtype")
    save_dtype: str = Field("float32", description="bfloat16 halves the folder but rounds away small updates")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default)")


def labels_hash(rows: Sequence[dict]) -> str:
    """sha256 of the training examples (id, input ids, label ids), in order."""
    return data_hash([json.dumps([r["id"], list(r["input_ids"]), list(r["label_ids"])]) for r in rows])


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """`steps` batches of block indices: a seeded permutation per epoch, concatenated."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += torch.randperm(n, generator=gen).tolist()
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def finetune(base_model: str, rows: Sequence[dict], alpha: float, cfg: FinetuneSettings, target: str | Path,
             log: Callable[[str], None] = print) -> dict:
    """Fine-tune `base_model` on `rows` (data/ rows: input_ids, label_ids) into the HF folder `target`; returns
    the manifest."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(target)
    if not rows:
        raise ValueError("whp finetune: data/ has no block to train on")
    bad = [r["id"] for r in rows if len(r["input_ids"]) != len(r["label_ids"])]
    if bad:
        raise ValueError(f"whp finetune: row {bad[0]}: input_ids and label_ids differ in length ({len(bad)} rows)")
    settings = cfg.model_dump(mode="json", exclude={"threads", "enabled"})
    lhash = labels_hash(rows)
    prev = reusable(target, MANIFEST, {"base_model": str(base_model), "labels_sha256": lhash, "settings": settings,
                                       "alpha": alpha})
    if prev is not None:
        log(f"whp finetune: {target} already made from this base model, labels and settings: reused")
        return {**prev, "reused": True}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, cfg.dtype)).to(device)
    examples = [(list(r["input_ids"]), list(r["label_ids"])) for r in rows]  # as is: no BOS, first label -100
    picks = batch_order(len(examples), cfg.steps, cfg.batch_size, cfg.seed)

    def on_step(step: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == cfg.steps:
            log(f"whp finetune: step {step}/{cfg.steps} loss {loss:.4f}")

    t0 = time.perf_counter()
    curve = train_steps(model, ([examples[i] for i in pick] for pick in picks),
                        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, device=device,
                        lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                        max_grad_norm=cfg.max_grad_norm, on_step=on_step)
    train_s = time.perf_counter() - t0
    manifest = {"base_model": str(base_model), "labels_sha256": lhash, "alpha": alpha, "blocks": len(rows),
                "labelled_positions": sum(sum(1 for y in r["label_ids"] if y != -100) for r in rows),
                "steps": cfg.steps, "settings": settings, "device": device, "loss_curve": curve,
                "train_s": round(train_s, 2), "steps_per_s": round(cfg.steps / train_s, 3) if train_s else None,
                "label_convention": LABEL_CONVENTION}
    save_model_atomic(model.to(getattr(torch, cfg.save_dtype)), tokenizer, target, MANIFEST, manifest)
    return {**manifest, "reused": False}
