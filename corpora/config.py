"""Base for every config model: unknown keys are errors (pydantic `extra="forbid"`); `RunConfig`: the keys every
pipeline has (`flows.config` loads it; `generators.contract.GeneratorConfig` is one)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(StrictModel):
    """Keys every pipeline has."""

    inputs: list[str] = []  # files or folders; empty: the pipeline's bundled sample
    output: str | None = None  # default ./output/<pipeline>
    overwrite: bool = False  # true: discard a previous run in `output` instead of resuming it
    shard_rows: int = Field(100_000, ge=1)
    shard_mb: float = Field(256.0, gt=0)
    license: str = "other"  # the dataset card's license (SPDX id or "other"); not part of any resume key
