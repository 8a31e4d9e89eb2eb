"""A small supervised fine-tuning loop: (prompt, target) pairs -> a student model saved as a HF folder.

Used by Impossible Distillation's self-distill round (`generators/impossible_distillation.py`); the loop is
`generators.finetune.train_steps`. Causal LMs: the input is `prompt + target + eos`, the loss on the target tokens only (prompt tokens are
labelled -100); the prompt is tokenised as the transformers backend tokenises a prompt, so the student sees at
generation time what it saw in training. Seq2seq models (`is_encoder_decoder` in config.json): the prompt is the
encoder input, the target the labels.

Deterministic: one `seed` sets torch's stream and the example order of every epoch. The folder is written next to
`target` and renamed into place (`student.json` inside it, with the training log, marks a finished folder), so a
killed run leaves no half-written student and a rerun with the same key reuses the folder instead of training again.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field

from corpora.config import StrictModel
from generators.finetune import train_steps

READY = "student.json"


class TrainSettings(StrictModel):
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="exactly this many optimizer steps, epochs ignored "
                                                          "(None: `epochs` passes)")
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(128, ge=8, description="tokens per example (prompt + target), longer ones are cut")
    seed: int = 0
    device: str = Field("auto", description="auto: cuda when present, else cpu")
    save_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: the base model's dtype (SmolLM2's folder: bf16); training runs in float32")


def model_kind(path: str | os.PathLike) -> Literal["causal", "seq2seq"]:
    cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    return "seq2seq" if cfg.get("is_encoder_decoder") else "causal"


def causal_example(tokenizer, prompt: str, target: str, max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) for one causal-LM example: labels -100 on the prompt, the target + eos learned."""
    p = tokenizer(prompt)["input_ids"]  # as the transformers backend encodes a prompt
    t = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids, labels = (p + t)[:max_length], ([-100] * len(p) + t)[:max_length]
    return ids, labels


def _batches(n: int, cfg: TrainSettings) -> list[list[int]]:
    """Example indices of every optimizer step: `epochs` shuffled passes, or exactly `max_steps` steps (as many
    passes as they take)."""
    rng = random.Random(cfg.seed)
    out: list[list[int]] = []
    epoch = 0
    while (len(out) < cfg.max_steps) if cfg.max_steps else (epoch < cfg.epochs):
        order = list(range(n))
        rng.shuffle(order)
        out += [order[k:k + cfg.batch_size] for k in range(0, n, cfg.batch_size)]
        epoch += 1
    return out[:cfg.max_steps] if cfg.max_steps else out


def fine_tune(base: str | os.PathLike, examples: Sequence[tuple[str, str]], target: str | os.PathLike,
              cfg: TrainSettings, log=print) -> dict:
    """Fine-tune `base` on (prompt, target) `examples`, save to `target`; reuse `target` if it is finished.
    Returns the training log (`reused`, `steps`, `losses`, `seconds`, ...)."""
    target = Path(target)
    if (target / READY).is_file():
        info = json.loads((target / READY).read_text(encoding="utf-8"))
        return {**info, "reused": True}
    if not examples:
        raise ValueError("fine_tune: no examples")
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    t0 = time.perf_counter()
    base = Path(base).expanduser()
    kind = model_kind(base)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    torch.manual_seed(cfg.seed)
    model = auto.from_pretrained(str(base), local_files_only=True, dtype=torch.float32).to(device)
    base_dtype = str(getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None) or "float32")
    save_dtype = base_dtype.replace("torch.", "") if cfg.save_dtype == "auto" else cfg.save_dtype
    if kind == "causal":
        enc = [causal_example(tok, p, t, cfg.max_length) for p, t in examples]
    else:
        enc = [(tok(p, truncation=True, max_length=cfg.max_length)["input_ids"],
                tok(text_target=t.strip(), truncation=True, max_length=cfg.max_length)["input_ids"])
               for p, t in examples]
    batches = _batches(len(enc), cfg)
    losses = train_steps(model, ([enc[i] for i in idx] for idx in batches), pad_id=tok.pad_token_id, device=device,
                         lr=cfg.lr, weight_decay=cfg.weight_decay,
                         on_step=lambda step, loss: log(f"student: step {step}/{len(batches)} loss {loss:.4f}"))
    model.eval()
    model.to("cpu", dtype=getattr(torch, save_dtype))
    info = {"base": str(base), "kind": kind, "examples": len(examples), "steps": len(batches),
            "epochs": cfg.epochs, "losses": losses, "config": cfg.model_dump(), "save_dtype": save_dtype,
            "seconds": round(time.perf_counter() - t0, 3),
            "truncated": sum(len(p) >= cfg.max_length for p, _ in enc)}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / READY).write_text(json.dumps(info, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / READY).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same student first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    del model
    return {**info, "reused": False}

