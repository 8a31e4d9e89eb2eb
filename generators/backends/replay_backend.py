"""Replay backend: completions read from a file instead of a model.

For users who generated elsewhere (a provider's batch API, another cluster) and want our post-processing and
lineage, and for fast deterministic flow tests. The file (Parquet, JSONL or JSON lines; `.gz`/`.zst` JSONL too)
has a `text` column and a key column:
- `request_id` (match="request_id"): the id of the request the stage asked (`_work/<round>/requests.parquet`
  lists them, so a batch job can be built from it and its answers matched back);
- `prompt` (match="prompt"): the prompt text, compared with the request's raw prompt or, for a chat request, its
  last user message.
"auto" uses `request_id` when the file has that column, else `prompt`. Optional columns: `finish_reason`,
`completion_tokens`, `prompt_tokens`, `model` (written on every row; else "replay:<file name>"), and
`completion_index` (orders several completions of one request for n > 1).

Sampling settings are not enforced (the file's text is the answer): `min_new_tokens` and the other options stay
part of the stage's cache key as always, but matching is by request id or prompt, so a replay file made before an
option existed still answers the same requests.

A request with no completion in the file comes back failed (retryable: add the answer and rerun). The file's
sha256 is part of the backend identity (so of every cache key): after the file is edited, a rerun reads every
request of that round again (reading is instant) instead of keeping answers the file no longer holds.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from corpora.jsonl import read_jsonl
from generators.backends.base import Backend, GenerationRequest, GenerationResult

Match = Literal["auto", "request_id", "prompt"]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if name.endswith((".jsonl", ".json", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst")):
        if name.endswith(".gz"):
            import gzip

            raw = gzip.decompress(path.read_bytes())
        elif name.endswith(".zst"):
            import zstandard

            raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
        else:
            raw = path.read_bytes()
        return [row for _, row in read_jsonl(path, data=raw)]
    raise ValueError(f"{path}: a replay file must be .parquet or .jsonl (optionally .gz / .zst)")


def load_replay_table(path: str, match: Match = "auto") -> tuple[dict[str, list[dict]], str]:
    """({key: [rows in completion order]}, the key column used). Errors name the file and row."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: replay file does not exist")
    rows = _read_rows(p)
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    key = match if match != "auto" else ("request_id" if "request_id" in columns else "prompt")
    if rows and key not in columns:
        raise ValueError(f"{p}: no '{key}' column (has {sorted(columns)})")
    if rows and "text" not in columns:
        raise ValueError(f"{p}: no 'text' column (has {sorted(columns)})")
    table: dict[str, list[dict]] = {}
    for i, r in enumerate(rows):
        k = r.get(key)
        if k is None or (r.get("text") is not None and not isinstance(r.get("text"), str)):
            raise ValueError(f"{p}: row {i}: needs a '{key}' and a string 'text'")
        table.setdefault(str(k), []).append(r)
    for group in table.values():
        if any("completion_index" in r for r in group):
            group.sort(key=lambda r: r.get("completion_index") or 0)
    return table, key


def prompt_key(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    users = [m["content"] for m in request.messages or [] if m["role"] == "user"]
    return users[-1] if users else request.messages[-1]["content"]


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: str, match: Match = "auto", model: str | None = None):
        self.path = str(Path(path).expanduser().resolve())
        self.table, self.key = load_replay_table(self.path, match)
        self.sha256 = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
        first = next((g[0] for g in self.table.values() if g), {})
        self._model = model or first.get("model") or f"replay:{Path(self.path).name}"

    @property
    def model(self) -> str:
        return self._model

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self._model, "file_sha256": self.sha256, "match": self.key}

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        out: list[GenerationResult] = []
        for req in requests:
            k = req.id if self.key == "request_id" else prompt_key(req)
            rows = [r for r in self.table.get(k, []) if r.get("text") is not None][:req.sampling.n]
            if len(rows) < req.sampling.n:
                out.append(GenerationResult.failure(
                    req.id, f"replay: {len(rows)} of {req.sampling.n} completion(s) for this request in "
                            f"{Path(self.path).name} (matched by {self.key})"))
                continue
            for i, r in enumerate(rows):
                text = r["text"]
                out.append(GenerationResult(
                    request_id=req.id, completion_index=i, text=text, finish_reason=r.get("finish_reason") or "stop",
                    prompt_tokens=r.get("prompt_tokens"),
                    completion_tokens=r.get("completion_tokens") if r.get("completion_tokens") is not None
                    else len(text.split())))
        return out
