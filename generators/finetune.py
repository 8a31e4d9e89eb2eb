"""The one fine-tuning loop (plain torch, no Trainer), used by the Impossible Distillation student
(`generators.student.fine_tune`) and the WHP reinforced model (`generators.reinforce.reinforce`).

`train_steps` runs one AdamW step per batch: each batch is a list of (input ids, labels) examples, padded to the
batch's longest (ids with `pad_id` and attention 0, labels with -100); the loss is the model's own (`labels=`).
Optional: linear warm-up over `warmup_steps` (LambdaLR, factor min(1, (s + 1) / (warmup + 1))) and gradient-norm
clipping at `max_grad_norm`. Deterministic given the caller's seed: the loop draws no random numbers itself
(the batches come from the caller's seeded order), so the same seed, model and batches give the same losses.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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
