"""One generation-settings model for every generator (`generation.*` in each generator's config), with per-round
overrides (`generation.rounds.<round>.backend`, `.shard_size`, ...), and one backend preflight.

A round's settings are the run's settings with that round's overrides on top: a run may draft with one model and
judge with another (`rounds.judge.backend`), and the stage loads one engine at a time.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from corpora.config import StrictModel
from generators.backends import BackendConfig, default_backend_config


class RoundSettings(StrictModel):
    """What one named round may change; unset keys keep the run's value."""

    backend: BackendConfig | None = None
    shard_size: int | None = Field(None, ge=1)
    max_retries: int | None = Field(None, ge=0)
    backoff_s: float | None = Field(None, ge=0)
    workers: int | None = Field(None, ge=1)
    device_groups: list[str] | None = None
    shard_tasks: bool | None = None


class GenerationSettings(StrictModel):
    backend: BackendConfig | None = Field(
        None, description="None: vLLM on a GPU machine that has it, else transformers (SmolLM2-135M on CPU)")
    shard_size: int = Field(64, ge=1, description="requests per backend call and per cached Parquet part")
    max_retries: int = Field(2, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    workers: int = Field(1, ge=1, description="worker processes, one engine each")
    device_groups: list[str] | None = Field(None, description='CUDA_VISIBLE_DEVICES per worker, e.g. ["0", "1"]')
    shard_tasks: bool = Field(False, description="one Prefect task per shard, run by the flow's task runner "
                                                 "(e.g. prefect-ray) instead of the stage's own loop/workers")
    rounds: dict[str, RoundSettings] = Field(default_factory=dict, description="per-round overrides by round name")

    def for_round(self, name: str) -> "GenerationSettings":
        """The settings one round runs with (its overrides applied; the result has no `rounds`)."""
        base = self.model_dump(exclude={"rounds"})
        # a loop round "novel#2" takes "novel"'s overrides, then its own ("novel#2") on top
        for key in dict.fromkeys([name.split("#")[0], name]):
            over = self.rounds.get(key)
            if over is not None:
                # the fields the override sets, each dumped whole: a backend built in code keeps its `kind`
                dumped = over.model_dump()
                base.update({k: dumped[k] for k in over.model_fields_set if dumped[k] is not None})
        return GenerationSettings.model_validate(base)

    def with_round(self, name: str, **keys) -> "GenerationSettings":
        """A copy in which round `name` runs with `keys` on top of its own overrides: e.g. `backend=` picks the
        engine that round loads (a student folder, a judge model), by round name, leaving the others' as they are."""
        over = self.rounds.get(name) or RoundSettings()
        return self.model_copy(update={"rounds": {**self.rounds, name: RoundSettings(
            **{**over.model_dump(exclude_unset=True), **keys})}})

    def backend_config(self):
        return self.backend or default_backend_config()

    def round_names_unknown(self, known: set[str]) -> list[str]:
        """Override names that match no round of the generator (`votes#1` matches the loop round `votes`)."""
        return sorted(n for n in self.rounds if n not in known and n.split("#")[0] not in known)


class BackendUnavailable(ValueError):
    """A backend that cannot run: the model is missing, the server does not answer, the replay file is absent."""


def preflight_backend(bcfg, where: str = "generation.backend", probe_server: bool = True) -> None:
    """Check before a run starts that a backend can work: local model paths exist (never downloaded), a replay
    file exists and has the columns it needs, an OpenAI-compatible server answers `/models`."""
    kind = bcfg.kind
    if kind in ("transformers", "vllm"):
        if bcfg.model and not Path(bcfg.model).expanduser().exists():
            raise BackendUnavailable(f"{where}.model: {bcfg.model} does not exist (local paths only)")
        if not bcfg.model:
            from generators.backends.local_models import smollm2_gguf_path

            try:
                smollm2_gguf_path()
            except FileNotFoundError as e:
                raise BackendUnavailable(f"{where}: no model given and the default is missing: {e}") from None
    elif kind == "replay":
        from generators.backends.replay_backend import load_replay_table

        try:
            load_replay_table(bcfg.path, bcfg.match)
        except (OSError, ValueError) as e:
            raise BackendUnavailable(f"{where}.path: {e}") from None
    elif kind == "openai" and probe_server:
        import httpx

        urls = bcfg.base_url if isinstance(bcfg.base_url, list) else [bcfg.base_url]
        for url in urls:
            try:
                httpx.get(url.rstrip("/") + "/models", timeout=5.0)
            except httpx.HTTPError as e:
                raise BackendUnavailable(f"{where}.base_url: {url} does not answer ({type(e).__name__}: {e})"
                                         ) from None


def preflight_settings(settings: GenerationSettings, rounds: set[str] | None = None, where: str = "generation",
                       backends: bool = True) -> None:
    """Every backend a run will use (the run's and each round's; `backends=False`: a run that uses none), and
    round names the generator knows."""
    if rounds is not None:
        unknown = settings.round_names_unknown(rounds)
        if unknown:
            raise BackendUnavailable(f"{where}.rounds: unknown round(s) {unknown} (this generator's rounds: "
                                     f"{', '.join(sorted(rounds))})")
    if not backends:
        return
    preflight_backend(settings.backend_config(), f"{where}.backend")
    for name, over in settings.rounds.items():
        if over.backend is not None:
            preflight_backend(over.backend, f"{where}.rounds.{name}.backend")
