"""The `unlearning-whp` / `unlearning-reinforce` settings, the tables they publish (blocks, anchors, rejected,
loss) and the label convention their rows follow. The logic is `generators/whp.py` (labels) and
`generators/whp_steps.py` (targets, anchors, labelled blocks)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from corpora.config import StrictModel

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

LABEL_CONVENTION = {
    "bos_added": False,
    "label_ids": "aligned with input_ids, Hugging Face causal-LM style: label_ids[j] is the target for token j "
                 "given tokens < j; pass model(input_ids, labels=label_ids) as is (the model shifts)",
    "first_position": "masked (-100): nothing precedes it",
    "if_your_trainer_prepends_bos": "prepend -100 to label_ids as well, or the labels shift by one",
}


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
    train_alpha: float = Field(1.0, ge=0, description="the alpha whose labels are published as data/ (the "
                               "training kind, one row per block); one of `alphas`. 1.0: MUSE's WHP default and "
                               "the lowest of its sweep (README: how to pick it)")
    top_k: int = Field(0, ge=0, description="> 0: also write the top-k soft labels (softmax of generic logits)")
    mask_renaming: bool = True

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, v: list[float]) -> list[float]:
        if not v or any(a < 0 for a in v) or len(set(v)) != len(v):
            raise ValueError("alphas: give distinct values >= 0")
        return v

    @model_validator(mode="after")
    def _train_alpha(self) -> "BlockSettings":
        if float(self.train_alpha) not in {float(a) for a in self.alphas}:
            raise ValueError(f"blocks.train_alpha {self.train_alpha:g} is not one of blocks.alphas "
                             f"{[float(a) for a in self.alphas]}: add it there or pick one of them")
        return self


class ModelSettings(StrictModel):
    device: str = Field("auto", description="auto: cuda when available, else cpu")
    dtype: str = Field("float32", description="weights dtype while scoring (logits are float32 either way)")
    threads: int | None = Field(None, ge=1)
