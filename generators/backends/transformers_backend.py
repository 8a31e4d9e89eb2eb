"""transformers backend: batched `generate` with left padding, on CPU or GPU.

Loads a local HF folder, or a GGUF file (`gguf_file=`; slower: transformers keeps GGUF weights packed). Used where
vLLM is absent. Requests are grouped by sampling settings (one `generate` call takes one setting), sorted by length
so that padding is small, and cut into micro-batches of `batch_size` sequences.

Seq2seq models (T5 family: `AutoModelForSeq2SeqLM`) run too, detected from the model config's `is_encoder_decoder`
or forced by `seq2seq=True/False`: the prompt goes to the encoder, the completion is the decoder's output (its
start token dropped), and `max_tokens` is not shortened by the prompt's length (the encoder has its own).

Seeds: `generate` has one random stream per call, so a seeded micro-batch is seeded with a hash of its requests'
seeds: reproducible for the same requests and batch size, not per request as in vLLM.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.backends.base import (Backend, GenerationRequest, GenerationResult, SamplingParams,
                                      chat_template_mode)

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    index: int
    request: GenerationRequest
    ids: list[int]


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, model_path: str | os.PathLike, *, gguf_file: str | None = None, device: str = "auto",
                 dtype: str = "auto", batch_size: int = 16, max_context: int | None = None,
                 threads: int | None = None, trust_remote_code: bool = False, seq2seq: bool | None = None):
        path = Path(model_path).expanduser()
        if gguf_file is None and path.suffix == ".gguf":
            path, gguf_file = path.parent, path.name
        if not path.exists():
            raise FileNotFoundError(f"{path}: model path does not exist (the transformers backend takes local paths)")
        if gguf_file and not (path / gguf_file).is_file():
            raise FileNotFoundError(f"{path / gguf_file}: GGUF file does not exist")
        self.model_path = str(path)
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        # GGUF weights stay packed and their kernels compute in float32; a HF folder runs in bf16
        self.dtype = ("float32" if gguf_file else "bfloat16") if dtype == "auto" else dtype
        self.max_context_setting = max_context
        self.trust_remote_code = trust_remote_code
        self.seq2seq_setting = seq2seq  # None: the config's is_encoder_decoder, read when the model loads
        self.seq2seq = bool(seq2seq)
        # CPU threads for torch (process-wide). On a machine shared with other jobs, fewer threads than cores
        # avoids spin-waiting threads fighting for cores (measured: 1 thread 3x faster than 2 under load).
        self.threads = threads
        self.lock = threading.Lock()  # one model, one caller at a time (threaded task runners share it)
        self.hf_model = None  # loaded on first use: building a backend (e.g. for its cache identity) is cheap
        self.tokenizer = None

    def load(self) -> None:
        if self.hf_model is not None:
            return
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        kw: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(self.model_path, trust_remote_code=self.trust_remote_code, **kw)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        seq2seq = self.seq2seq_setting
        if seq2seq is None:
            config = AutoConfig.from_pretrained(self.model_path, trust_remote_code=self.trust_remote_code, **kw)
            seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        self.seq2seq = seq2seq
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
        model = auto.from_pretrained(self.model_path, dtype=getattr(torch, self.dtype),
                                     trust_remote_code=self.trust_remote_code, **kw)
        model.to(self.device).eval()
        cfg_ctx = (getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
                   or (512 if seq2seq else 2048))
        self.max_context = min(self.max_context_setting or cfg_ctx, cfg_ctx)
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = sorted(i for i in eos_ids if i is not None)
        self.tokenizer, self.hf_model = tokenizer, model

    # ---- identity -------------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_path + (f"/{self.gguf_file}" if self.gguf_file else "")

    def identity(self) -> dict[str, Any]:
        # batch size changes nothing but seeded batching; device/dtype change numerics
        ident = {"backend": self.name, "model": self.model, "dtype": self.dtype, "device": self.device.split(":")[0]}
        if self.max_context_setting:
            ident["max_context"] = self.max_context_setting
        if self.seq2seq_setting is not None:  # forced either way (auto: the model's own config, named by the path)
            ident["seq2seq"] = self.seq2seq_setting
        return ident

    # ---- generation -----------------------------------------------------------------------------------------
    def encode(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, **chat_template_mode(request))
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(request.prompt)["input_ids"]

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        with self.lock:
            self.load()
            return self._generate(requests)

    def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        per_request: dict[int, list[GenerationResult]] = {}
        groups: dict[str, list[_Prepared]] = {}
        for i, req in enumerate(requests):
            ids = self.encode(req)
            if len(ids) >= self.max_context:
                per_request[i] = [GenerationResult.failure(
                    req.id, f"prompt has {len(ids)} tokens; the model's context is {self.max_context} tokens",
                    prompt_tokens=len(ids), retryable=False)]
                continue
            key = req.sampling.model_copy(update={"seed": None}).to_json()
            groups.setdefault(key, []).append(_Prepared(i, req, ids))
        for items in groups.values():
            items.sort(key=lambda p: len(p.ids))
            n = items[0].request.sampling.n
            step = max(1, self.batch_size // n)
            for start in range(0, len(items), step):
                batch = items[start:start + step]
                for prep, results in zip(batch, self._generate_batch(batch)):
                    per_request[prep.index] = results
                if self.on_progress is not None:
                    self.on_progress(len(batch))
        return [r for i in range(len(requests)) for r in per_request[i]]

    def _generate_batch(self, batch: list[_Prepared]) -> list[list[GenerationResult]]:
        import torch

        sp: SamplingParams = batch[0].request.sampling
        longest = max(len(p.ids) for p in batch)
        # a decoder-only model's context holds prompt + completion; an encoder-decoder's decoder has its own
        max_new = sp.max_tokens if self.seq2seq else min(sp.max_tokens, self.max_context - longest)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, p in enumerate(batch):
            input_ids[row, longest - len(p.ids):] = torch.tensor(p.ids)
            attention[row, longest - len(p.ids):] = 1
        seeds = [p.request.sampling.seed for p in batch if p.request.sampling.seed is not None]
        if seeds:
            digest = hashlib.sha256(",".join(map(str, seeds)).encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
        gen_kw = self._generate_kwargs(sp, max_new)
        with torch.inference_mode():
            out = self.hf_model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                         **gen_kw)
        # decoder-only: the prompt comes back first; encoder-decoder: the decoder's start token does
        sequences = (out.sequences[:, 1:] if self.seq2seq else out.sequences[:, longest:]).cpu()
        logprobs = None
        if sp.logprobs is not None:
            logits = torch.stack(out.logits, dim=1).float().log_softmax(-1).cpu()  # (B*n, T, V), raw model logits
            logprobs = logits.gather(-1, sequences.unsqueeze(-1)).squeeze(-1)
        results: list[list[GenerationResult]] = []
        for row, p in enumerate(batch):
            mine = []
            for k in range(sp.n):
                seq_row = row * sp.n + k
                toks = sequences[seq_row].tolist()
                cut = next((j for j, t in enumerate(toks) if t in self.eos_ids), None)
                finish = "stop" if cut is not None else "length"
                toks = toks[:cut] if cut is not None else toks
                text = self.tokenizer.decode(toks, skip_special_tokens=True)
                if sp.stop:
                    hit = [text.find(s) for s in sp.stop if s and s in text]
                    if hit:
                        text, finish = text[:min(hit)], "stop"
                        toks = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                lps = logprobs[seq_row, :len(toks)].tolist() if logprobs is not None else None
                mine.append(GenerationResult(request_id=p.request.id, completion_index=k, text=text,
                                             finish_reason=finish, prompt_tokens=len(p.ids),
                                             completion_tokens=len(toks), token_logprobs=lps))
            results.append(mine)
        return results

    def _generate_kwargs(self, sp: SamplingParams, max_new: int) -> dict[str, Any]:
        from transformers import GenerationConfig

        sample = sp.temperature > 0
        # a config built from scratch: the checkpoint's generation defaults must not leak into our settings
        cfg = GenerationConfig(
            max_new_tokens=max_new, do_sample=sample, num_return_sequences=sp.n,
            temperature=sp.temperature if sample else None, top_p=sp.top_p if sample else None,
            top_k=(sp.top_k if sp.top_k > 0 else 0) if sample else None,
            repetition_penalty=sp.repetition_penalty, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids, bos_token_id=self.hf_model.generation_config.bos_token_id,
            return_dict_in_generate=True, output_logits=sp.logprobs is not None,
            stop_strings=list(sp.stop) or None,
            no_repeat_ngram_size=sp.no_repeat_ngram_size,
            bad_words_ids=[[t] for t in self.banned_tokens(tuple(sp.banned_substrings))] or None,
            min_new_tokens=min(sp.min_new_tokens, max_new) if sp.min_new_tokens else None,
        )
        if self.seq2seq:
            cfg.decoder_start_token_id = self.hf_model.generation_config.decoder_start_token_id
            if cfg.decoder_start_token_id is None:
                cfg.decoder_start_token_id = self.hf_model.config.decoder_start_token_id
        kw: dict[str, Any] = {"generation_config": cfg}
        if sp.stop:
            kw["tokenizer"] = self.tokenizer  # generate needs it to match stop strings
        return kw

    def banned_tokens(self, substrings: tuple[str, ...]) -> list[int]:
        """Every vocabulary token whose decoded text contains one of `substrings` (cached per tuple)."""
        if not substrings:
            return []
        cache = self.__dict__.setdefault("_banned", {})
        if substrings not in cache:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            cache[substrings] = [i for i, t in enumerate(texts) if any(s in t for s in substrings)
                                 and i not in self.eos_ids]
        return cache[substrings]

    def close(self) -> None:
        import gc

        self.hf_model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - best effort
            pass


