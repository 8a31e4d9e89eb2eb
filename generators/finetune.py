"""The one fine-tuning loop (plain torch, no Trainer), used by the Impossible Distillation student
(`generators.student.fine_tune`), the WHP reinforced model (`generators.reinforce.reinforce`) and the WHP unlearned
model (`generators.whp_finetune.finetune`); with the parts those share: the device choice, the data hash, the reuse
check of a finished model folder and its atomic save.

`train_steps` runs one AdamW step per batch: each batch is a list of (input ids, labels) examples, padded to the
batch's longest (ids with `pad_id` and attention 0, labels with -100); the loss is the model's own (`labels=`).
Optional: linear warm-up over `warmup_steps` (LambdaLR, factor min(1, (s + 1) / (warmup + 1))) and gradient-norm
clipping at `max_grad_norm`. Deterministic given the caller's seed: the loop draws no random numbers itself
(the batches come from the caller's seeded order), so the same seed, model and batches give the same losses.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

Example = tuple[Sequence[int], Sequence[int]]  # (input ids, labels); -100 labels are not learned


def train_steps(model, batches: Iterable[Sequence[Example]], *, pad_id: int, device: str, lr: float,
                weight_decay: float = 0.0, warmup_steps: int | None = None, max_grad_norm: float | None = None,
                on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `model` in place on `batches`; returns the loss of every step (rounded to 5 decimals)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = None if warmup_steps is None else \
        torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (warmup_steps + 1)))
    model.train()
    losses: list[float] = []
    for step, batch in enumerate(batches, 1):
        ids, labels = [list(x) for x, _ in batch], [list(y) for _, y in batch]
        width, lwidth = max(map(len, ids)), max(map(len, labels))
        x = torch.tensor([s + [pad_id] * (width - len(s)) for s in ids], device=device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids], device=device)
        y = torch.tensor([s + [-100] * (lwidth - len(s)) for s in labels], device=device)
        loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        if sched is not None:
            sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(float(loss.detach()), 5))
        if on_step is not None:
            on_step(step, losses[-1])
    del opt
    return losses


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def data_hash(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def reusable(target: Path, manifest_name: str, expect: dict) -> dict | None:
    """The manifest of the finished model folder `target` when it holds every `expect` key with that value, else
    None (the folder is then built anew)."""
    done = target / manifest_name
    if not done.is_file():
        return None
    prev = json.loads(done.read_text())
    return prev if all(prev.get(k) == v for k, v in expect.items()) else None


def save_model_atomic(model, tokenizer, target: Path, manifest_name: str, manifest: dict) -> None:
    """An HF model folder (safetensors + tokenizer + `manifest_name`) built beside `target` and renamed into place
    (an older `target` is replaced), so a half-written model is never mistaken for a finished one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / manifest_name).write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a model folder is meant to be shared
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        old = target.parent / f".{target.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
