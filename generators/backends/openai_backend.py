"""OpenAI-compatible backend: any `/v1/chat/completions` + `/v1/completions` server (a `vllm serve` fleet, TGI, a
hosted API).

Bounded concurrency (a semaphore), a timeout per HTTP call, retries with exponential backoff and jitter on
timeouts, connection errors, 429 and 5xx (honouring `Retry-After`); other 4xx answers (a prompt over the context,
a bad parameter) fail that request at once. Each request ends as its completions or as one `failed` result: a
batch never fails as a whole.

The API key is read from the environment variable named by `api_key_env` when the backend is built, sent only in
the `Authorization` header, and never logged, hashed or written: errors carry the status and the server's body.

Messages ending with an assistant message (a prefill) are sent with vLLM's `continue_final_message`.
`n > 1` is sent as n calls with `n=1` (seeds `seed+k`), so every completion has its exact token count.
`top_k`, `repetition_penalty` and `min_tokens` (from `min_new_tokens`) are not OpenAI parameters; vLLM's server
accepts all three (TGI the first two), hosted APIs may not (`send_extra_params=False` leaves them out).
"""
from __future__ import annotations

import asyncio
import os
import random
import threading
from typing import Any

from generators.backends.base import Backend, GenerationRequest, GenerationResult

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, base_url: str | list[str], model: str, *, api_key_env: str | None = "OPENAI_API_KEY",
                 max_concurrency: int = 16, timeout_s: float = 120.0, max_retries: int = 4, backoff_s: float = 1.0,
                 send_extra_params: bool = True):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("openai backend: base_url is empty")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.served_model = model
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.send_extra_params = send_extra_params
        self._next_url = 0

    def __repr__(self) -> str:  # no key in any repr
        return f"OpenAIBackend(base_urls={self.base_urls!r}, model={self.served_model!r})"

    @property
    def model(self) -> str:
        return self.served_model

    def identity(self) -> dict[str, Any]:
        # the served model names the weights; where it is served (URLs) and the key do not change outputs
        return {"backend": self.name, "model": self.served_model, "extra_params": self.send_extra_params}

    # ---- sync entry point ------------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(requests))
        # called from inside an event loop (e.g. an async task): run ours in a thread
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["out"] = asyncio.run(self.agenerate(requests))
            except BaseException as e:  # noqa: BLE001 - re-raised below in the caller's thread
                box["err"] = e

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box["out"]

    async def agenerate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        sem = asyncio.Semaphore(self.max_concurrency)
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits) as client:
            jobs = [self._one_request(client, sem, req) for req in requests]
            per_request = await asyncio.gather(*jobs)
        return [r for results in per_request for r in results]

    async def _one_request(self, client, sem, req: GenerationRequest) -> list[GenerationResult]:
        calls = [self._completion(client, sem, req, k) for k in range(req.sampling.n)]
        done = await asyncio.gather(*calls)
        failed = [r for r in done if r.status == "failed"]
        if failed:  # a request is whole or failed: partial n would look like a smaller n
            return [GenerationResult.failure(req.id, failed[0].error or "failed", failed[0].prompt_tokens,
                                             retryable=all(r.retryable for r in failed))]
        return list(done)

    def _payload(self, req: GenerationRequest, k: int) -> tuple[str, dict[str, Any]]:
        sp = req.sampling
        body: dict[str, Any] = {"model": self.served_model, "n": 1, "temperature": sp.temperature, "top_p": sp.top_p,
                                "max_tokens": sp.max_tokens}
        if sp.seed is not None:
            body["seed"] = sp.seed + k
        if sp.stop:
            body["stop"] = list(sp.stop)
        if self.send_extra_params:
            if sp.top_k > 0:
                body["top_k"] = sp.top_k
            if sp.repetition_penalty != 1.0:
                body["repetition_penalty"] = sp.repetition_penalty
            if sp.min_new_tokens:  # vLLM's server takes `min_tokens` (an extra sampling parameter)
                body["min_tokens"] = sp.min_new_tokens
        if req.messages is not None:
            body["messages"] = req.messages
            if req.continues_assistant:  # a prefill: vLLM's extension of the chat API
                body.update(add_generation_prompt=False, continue_final_message=True)
            if sp.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = sp.logprobs
            return "/chat/completions", body
        body["prompt"] = req.prompt
        if sp.logprobs is not None:
            body["logprobs"] = sp.logprobs
        return "/completions", body

    def _url(self) -> str:
        url = self.base_urls[self._next_url % len(self.base_urls)]
        self._next_url += 1
        return url

    async def _completion(self, client, sem, req: GenerationRequest, k: int) -> GenerationResult:
        import httpx

        path, body = self._payload(req, k)
        last_error = "no attempt made"
        last_retry_after: str | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, last_retry_after))
            last_retry_after = None
            try:
                async with sem:
                    resp = await client.post(self._url() + path, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last_error = f"{type(e).__name__}: {e}"
                continue
            if resp.status_code == 200:
                try:
                    return self._parse(req, k, resp.json(), chat=req.messages is not None)
                except (ValueError, KeyError, IndexError, TypeError) as e:
                    return GenerationResult.failure(req.id, f"unparseable response: {type(e).__name__}: {e}")
            last_error = f"HTTP {resp.status_code}: {resp.text[:500]}"
            if resp.status_code not in RETRY_STATUS:
                return GenerationResult.failure(req.id, last_error, retryable=False)
            last_retry_after = resp.headers.get("retry-after")
        return GenerationResult.failure(req.id, f"gave up after {self.max_retries + 1} attempts: {last_error}")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())

    @staticmethod
    def _parse(req: GenerationRequest, k: int, data: dict[str, Any], chat: bool) -> GenerationResult:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        text = choice["message"]["content"] if chat else choice["text"]
        lps = None
        if req.sampling.logprobs is not None and choice.get("logprobs"):
            lp = choice["logprobs"]
            if chat:
                lps = [float(t["logprob"]) for t in (lp.get("content") or [])]
            else:
                lps = [float(x) for x in (lp.get("token_logprobs") or []) if x is not None]
        return GenerationResult(request_id=req.id, completion_index=k, text=text or "",
                                finish_reason=choice.get("finish_reason") or "length",
                                prompt_tokens=usage.get("prompt_tokens"),
                                completion_tokens=usage.get("completion_tokens"), token_logprobs=lps)
