"""Generation records and the one backend interface: a list of requests in, a list of results out.

A backend knows how to generate; it knows nothing of prompts' meaning (the generator's job) nor of batching across
shards, caching or retries (the stage's job). A backend returns one `GenerationResult` per completion, in request
order. A request it can tell is hopeless (prompt longer than the context) comes back as one result with
`status="failed"` and the reason; an error it cannot pin on one request is raised for the whole call, and the stage
isolates the culprit.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from corpora.config import StrictModel
from corpora.hashing import short_hash

Status = Literal["ok", "failed"]
_LATER_KEYS = ("no_repeat_ngram_size", "banned_substrings", "min_new_tokens")


class SamplingParams(StrictModel):
    """Sampling settings of one request. Defaults are plain greedy-free sampling; generators set their own."""

    n: int = Field(1, ge=1, description="completions per request")
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, description="-1 = off")
    repetition_penalty: float = Field(1.0, gt=0.0)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    logprobs: int | None = Field(None, ge=0, description="return the sampled tokens' logprobs when set")
    # later additions: serialised only when set, so the cache keys (and config files) of requests that do not
    # use them are what they were before the keys existed
    no_repeat_ngram_size: int | None = Field(None, ge=1, description="no n-gram of this size twice in a completion "
                                                                     "(transformers; vLLM has no such option)")
    banned_substrings: list[str] = Field(default_factory=list, description=(
        "never sample a token whose text contains one of these (e.g. a newline); vLLM: its `bad_words`"))
    min_new_tokens: int | None = Field(None, ge=0, description=(
        "no end of sequence (nor stop string, in vLLM) before this many new tokens: transformers `min_new_tokens`, "
        "vLLM `min_tokens`, OpenAI-compatible servers `min_tokens` (vLLM's server takes it); replay ignores it"))

    @model_validator(mode="after")
    def _min_within_max(self) -> "SamplingParams":
        if self.min_new_tokens is not None and self.min_new_tokens > self.max_tokens:
            raise ValueError(f"min_new_tokens ({self.min_new_tokens}) is more than max_tokens ({self.max_tokens})")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_additions(self, handler):
        out = handler(self)
        if isinstance(out, dict):
            for key in _LATER_KEYS:
                if out.get(key) in (None, []):
                    out.pop(key, None)
        return out

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)


class GenerationRequest(StrictModel):
    """One prompt to complete. Exactly one of `messages` (chat, the model's template applied) or `prompt` (raw)."""

    id: str = Field(min_length=1)
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    template_id: str = ""
    parent_ids: list[str] = Field(default_factory=list)
    # what the asking row carries into the output rows (seed id, style, ...): joined back by request id; not
    # sent to the model and not part of the cache key
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_input(self) -> "GenerationRequest":
        if (self.messages is None) == (self.prompt is None):
            raise ValueError(f"request {self.id!r}: give exactly one of 'messages' or 'prompt'")
        return self

    @field_validator("messages")
    @classmethod
    def _messages_shape(cls, v: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("messages is empty")
        for i, m in enumerate(v):
            if set(m) != {"role", "content"} or not isinstance(m.get("content"), str):
                raise ValueError(f"message {i} must be {{'role': str, 'content': str}}, got keys {sorted(m)}")
            if m["role"] not in ("system", "user", "assistant"):
                raise ValueError(f"message {i}: unknown role {m['role']!r}")
        return v

    @property
    def continues_assistant(self) -> bool:
        """Messages ending with an assistant message ask the model to continue it (a prefill), not to answer."""
        return self.messages is not None and self.messages[-1]["role"] == "assistant"

    def content_key(self) -> str:
        """What the model is asked, canonically (used in the cache key)."""
        payload = {"messages": self.messages} if self.messages is not None else {"prompt": self.prompt}
        return json.dumps(payload, sort_keys=True, ensure_ascii=False)


@dataclass
class GenerationResult:
    """One completion (or one failure record) of one request."""

    request_id: str
    completion_index: int
    text: str | None
    finish_reason: str | None  # "stop", "length", None when failed
    prompt_tokens: int | None
    completion_tokens: int | None
    status: Status = "ok"
    error: str | None = None
    token_logprobs: list[float] | None = None
    retryable: bool = True  # False: the request itself is at fault (too long, rejected); a rerun won't retry it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failure(cls, request_id: str, error: str, prompt_tokens: int | None = None,
                retryable: bool = True) -> "GenerationResult":
        return cls(request_id=request_id, completion_index=0, text=None, finish_reason=None,
                   prompt_tokens=prompt_tokens, completion_tokens=None, status="failed", error=error,
                   retryable=retryable)


def chat_template_mode(request: GenerationRequest) -> dict[str, bool]:
    """`apply_chat_template` arguments: open a new assistant turn, or continue the final assistant message."""
    if request.continues_assistant:
        return {"add_generation_prompt": False, "continue_final_message": True}
    return {"add_generation_prompt": True}


class Backend(ABC):
    """An LLM that turns requests into results. Subclasses set `name` and implement `generate`."""

    name: str = ""
    # set by the stage: called with the number of requests just finished inside one `generate` call, so progress
    # shows as completions arrive (backends that work in batches call it per batch; others never do)
    on_progress: Callable[[int], None] | None = None

    @property
    @abstractmethod
    def model(self) -> str:
        """Model identity written on every row (a path or a served name)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that changes outputs besides the request (model, dtype, engine options). Part of the cache
        key; must never hold secrets."""

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """All requests in one call, so the engine batches. One result per completion, grouped by request."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine (GPU memory, client sessions)."""

    def identity_hash(self) -> str:
        return short_hash(json.dumps(self.identity(), sort_keys=True, default=str), length=16)


def check_results(requests: list[GenerationRequest], results: list[GenerationResult]) -> None:
    """A backend's output must account for every request: n completions, or one failure row."""
    by_req: dict[str, list[GenerationResult]] = {}
    for r in results:
        by_req.setdefault(r.request_id, []).append(r)
    for req in requests:
        got = by_req.get(req.id, [])
        if not got:
            raise RuntimeError(f"backend returned no result for request {req.id!r}")
        if got[0].status == "ok" and len(got) != req.sampling.n:
            raise RuntimeError(f"backend returned {len(got)} completions for request {req.id!r}, "
                               f"asked n={req.sampling.n}")
