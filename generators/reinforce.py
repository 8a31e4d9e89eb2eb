"""The reinforced model of "Who's Harry Potter": the baseline causal LM fine-tuned further on the unlearn target, so
that its logits rise above the baseline's where the target's own knowledge shows.

The loop is `generators.finetune.train_steps`: the target texts are tokenised (EOS between documents), packed into blocks of
`block_tokens`, and the model is trained for `steps` AdamW steps on seeded random batches of blocks (linear warm-up,
constant after; gradient clipping). Loss on up to `eval_blocks` blocks spread over the target is measured before
and after (eval mode, no dropout). The
folder written is a plain HF model folder (safetensors + tokenizer) with `reinforce.json`: base model, data hash,
the config, steps, loss curve, loss before/after, steps/s. The folder is built beside its target and renamed into
place, so a half-written model is never mistaken for a finished one.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from pydantic import Field

from corpora.config import StrictModel
from generators.finetune import data_hash, pick_device, reusable, save_model_atomic, train_steps

MANIFEST = "reinforce.json"


class ReinforceSettings(StrictModel):
    steps: int = Field(10, ge=1, description="optimizer steps (WHP: a few epochs over the target)")
    batch_size: int = Field(2, ge=1, description="blocks per step")
    block_tokens: int = Field(128, ge=8, description="tokens per training block (documents packed, EOS between)")
    lr: float = Field(1e-5, gt=0, description="1e-5: a light reinforcement. Stronger training lowers every raw "
                      "logit (1e-4 x 10 steps on the demo: -9.1 on average), so v_r - v_b < 0 almost everywhere and "
                      "the WHP labels fall back to the baseline's argmax (bench/results/whp_reinforce.txt)")
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(2, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    device: str = Field("auto", description="auto: cuda when available, else cpu")
    dtype: str = Field("float32", description="training dtype (float32 on CPU; bfloat16 on GPU is fine)")
    save_dtype: str = Field("float32", description="bfloat16 halves the folder but rounds away small updates")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default)")
    eval_blocks: int = Field(32, ge=1, description="loss before/after is measured on this many blocks (evenly "
                                                   "spread over the target)")


def pack_blocks(texts: Sequence[str], tokenizer, block_tokens: int) -> list[list[int]]:
    """Token ids of all texts joined with EOS, cut into blocks of `block_tokens` (the tail, if at least 8 tokens,
    is its own shorter block)."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for t in texts:
        ids += tokenizer(t, add_special_tokens=False)["input_ids"]
        if eos is not None:
            ids.append(eos)
    blocks = [ids[i:i + block_tokens] for i in range(0, len(ids), block_tokens)]
    return [b for b in blocks if len(b) >= min(8, block_tokens)]


def _mean_loss(model, blocks: list[list[int]], device: str, batch: int) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(blocks), batch):
            for b in blocks[i:i + batch]:  # one at a time: blocks differ in length only at the tail
                x = torch.tensor([b], device=device)
                out = model(input_ids=x, labels=x)
                total += float(out.loss) * (len(b) - 1)
                n += len(b) - 1
    return total / max(n, 1)


def reinforce(base_model: str, texts: Sequence[str], cfg: ReinforceSettings, target: str | Path,
              log: Callable[[str], None] = print) -> dict:
    """Fine-tune `base_model` on `texts`, write the HF folder `target` (+ reinforce.json); returns the manifest.
    An existing `target` whose manifest has the same base model, data hash and settings is reused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(target)
    settings = cfg.model_dump(mode="json", exclude={"threads"})
    dhash = data_hash(texts)
    prev = reusable(target, MANIFEST, {"base_model": str(base_model), "data_sha256": dhash, "settings": settings})
    if prev is not None:
        log(f"reinforce: {target} already made from this base model, data and settings: reused")
        return {**prev, "reused": True}
    if not (Path(base_model) / "config.json").is_file():
        raise FileNotFoundError(f"{base_model}: not a Hugging Face model folder (no config.json)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    blocks = pack_blocks(texts, tokenizer, cfg.block_tokens)
    if not blocks:
        raise ValueError("reinforce: the target texts give no training block (too short or empty)")
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, cfg.dtype)).to(device)
    step_ = max(1, len(blocks) // cfg.eval_blocks)
    eval_set = blocks[::step_][:cfg.eval_blocks]
    loss_before = _mean_loss(model, eval_set, device, cfg.batch_size)
    gen = torch.Generator().manual_seed(cfg.seed)
    picks = (torch.randint(len(blocks), (cfg.batch_size,), generator=gen).tolist() for _ in range(cfg.steps))

    def on_step(step: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == cfg.steps:
            log(f"reinforce: step {step}/{cfg.steps} loss {loss:.4f}")

    t0 = time.perf_counter()
    curve = train_steps(model, ([(blocks[i], blocks[i]) for i in pick] for pick in picks),
                        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, device=device,
                        lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                        max_grad_norm=cfg.max_grad_norm, on_step=on_step)
    train_s = time.perf_counter() - t0
    loss_after = _mean_loss(model, eval_set, device, cfg.batch_size)
    manifest = {"base_model": str(base_model), "data_sha256": dhash, "documents": len(texts),
                "blocks": len(blocks), "tokens": sum(map(len, blocks)), "eval_blocks": len(eval_set),
                "settings": settings, "device": device,
                "steps": cfg.steps, "loss_curve": curve, "loss_before": round(loss_before, 5),
                "loss_after": round(loss_after, 5), "train_s": round(train_s, 2),
                "steps_per_s": round(cfg.steps / train_s, 3) if train_s else None}
    save_model_atomic(model.to(getattr(torch, cfg.save_dtype)), tokenizer, target, MANIFEST, manifest)
    return {**manifest, "reused": False}
