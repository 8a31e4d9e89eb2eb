"""The generation stage: requests in, one Parquet row per completion out; sharded, cached, resumable, honest.

- Cache: every request has a key, a hash of (backend identity: model, dtype, engine options; sampling parameters;
  template id with its version; request id and content). Results live in `<store>/parts/*.parquet`, each row
  carrying its key. A run first reads the keys already there and generates only the rest, so a rerun after an
  interruption regenerates nothing that was written, and changing one parameter regenerates only what it changes.
  (The request id is in the key on purpose: two requests with the same prompt are two samples, not one.)
- Shards: the pending requests are cut into shards of `shard_size`; a shard is one backend call (so the engine
  batches all of it) and one Parquet part written atomically (temp + rename, zstd). While a part is written the
  next shard is already generating (a writer thread), so the engine does not wait for I/O.
- Failures never vanish: an exception from a backend call is isolated by splitting the shard in halves down to the
  failing request, which is retried with exponential backoff and then recorded with `status="failed"` and its
  error; a request the backend itself refuses (prompt over the context) is recorded failed at once. A rerun tries
  failed requests again (`retry_failed`), except those refused for good (a prompt over the context).
- Scale-out: `run_shard` is a plain function of (shard, backend config, store), so Prefect task runners
  (threads/processes, `prefect-ray`) or separate GPU workers can take shards; `workers > 1` here starts that many
  processes, one engine each, pinned to `device_groups` (one GPU group per engine).
- Throughput: `GenerationReport` (requests/s, tokens/s, time in the backend, CPU and GPU utilisation where
  measurable); a progress bar while running.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from corpora.shards import write_table_atomic
from generators.backends import BackendConfig, get_backend
from generators.backends.base import Backend, GenerationRequest, GenerationResult, check_results

log = logging.getLogger(__name__)

RESULT_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("completion_index", pa.int32(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("finish_reason", pa.string()),
    pa.field("prompt_tokens", pa.int32()),
    pa.field("completion_tokens", pa.int32()),
    pa.field("model", pa.string(), nullable=False),
    pa.field("backend", pa.string(), nullable=False),
    pa.field("sampling_params", pa.string(), nullable=False),
    pa.field("template_id", pa.string(), nullable=False),
    pa.field("parent_ids", pa.list_(pa.string()), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("retryable", pa.bool_()),
    pa.field("attempts", pa.int32(), nullable=False),
    pa.field("token_logprobs", pa.list_(pa.float32())),
    pa.field("cache_key", pa.string(), nullable=False),
    pa.field("created_at", pa.float64(), nullable=False),
])

REQUEST_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("messages", pa.string()),  # JSON list of {role, content}
    pa.field("prompt", pa.string()),
    pa.field("sampling_params", pa.string(), nullable=False),
    pa.field("template_id", pa.string(), nullable=False),
    pa.field("parent_ids", pa.list_(pa.string()), nullable=False),
    pa.field("meta", pa.string()),  # JSON: the fields the asking row carries into the output
])


class BadRequestTable(ValueError):
    """A request table that cannot be used; the message names the file and row."""


# ---- keys ----------------------------------------------------------------------------------------------------
def cache_key(request: GenerationRequest, backend_identity: dict[str, Any]) -> str:
    payload = {
        "backend": backend_identity,
        "sampling": request.sampling.model_dump(),
        "template_id": request.template_id,
        "request_id": request.id,
        "content": request.content_key(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def check_unique_ids(requests: Sequence[GenerationRequest]) -> None:
    seen: dict[str, int] = {}
    for i, r in enumerate(requests):
        if r.id in seen:
            raise ValueError(f"duplicate request id {r.id!r} at positions {seen[r.id]} and {i}")
        seen[r.id] = i


# ---- request tables ------------------------------------------------------------------------------------------
def requests_to_table(requests: Sequence[GenerationRequest]) -> pa.Table:
    return pa.Table.from_pylist([{
        "id": r.id, "messages": json.dumps(r.messages, ensure_ascii=False) if r.messages is not None else None,
        "prompt": r.prompt, "sampling_params": r.sampling.to_json(), "template_id": r.template_id,
        "parent_ids": list(r.parent_ids),
        "meta": json.dumps(r.meta, ensure_ascii=False, sort_keys=True, default=str) if r.meta else None}
        for r in requests], schema=REQUEST_SCHEMA)


def requests_from_table(table: pa.Table | str | os.PathLike) -> list[GenerationRequest]:
    """Requests from a table (or a Parquet file) with REQUEST_SCHEMA's columns (`messages` may be a JSON string or a
    list of structs; `sampling_params` a JSON string). Errors name the file and the row."""
    from pydantic import ValidationError

    source = "<table>"
    if not isinstance(table, pa.Table):
        source = str(table)
        try:
            table = pq.read_table(table)
        except Exception as e:
            raise BadRequestTable(f"{source}: not a readable Parquet file: {e}") from e
    missing = {"id", "sampling_params"} - set(table.column_names)
    if missing or not ({"messages", "prompt"} & set(table.column_names)):
        raise BadRequestTable(f"{source}: a request table needs columns id, sampling_params and messages or prompt; "
                              f"has {table.column_names}")
    out = []
    for i, row in enumerate(table.to_pylist()):
        try:
            messages = row.get("messages")
            if isinstance(messages, str):
                messages = json.loads(messages)
            sampling = row.get("sampling_params")
            sampling = json.loads(sampling) if isinstance(sampling, str) else (sampling or {})
            meta = row.get("meta")
            meta = json.loads(meta) if isinstance(meta, str) else (meta or {})
            out.append(GenerationRequest(id=str(row["id"]) if row["id"] is not None else "", messages=messages,
                                         prompt=row.get("prompt"), sampling=sampling,
                                         template_id=row.get("template_id") or "",
                                         parent_ids=list(row.get("parent_ids") or []), meta=meta))
        except ValidationError as e:
            reasons = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'row'}: {err['msg']}" for err in e.errors())
            raise BadRequestTable(f"{source}: row {i} (id={row.get('id')!r}): {reasons}") from e
        except (json.JSONDecodeError, TypeError) as e:
            raise BadRequestTable(f"{source}: row {i} (id={row.get('id')!r}): {e}") from e
    check_unique_ids(out)
    return out


# ---- the store -----------------------------------------------------------------------------------------------
class ResultStore:
    """Parquet parts of generation results under `<directory>/parts/`. Safe to share between processes: every
    part has a unique name and appears atomically; readers skip temp files."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.parts_dir = self.directory / "parts"

    def part_paths(self) -> list[Path]:
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.glob("part-*.parquet"))

    def finished_keys(self) -> tuple[set[str], set[str], set[str]]:
        """(keys with ok results, keys that failed for a reason worth retrying, keys that failed for good)."""
        ok: set[str] = set()
        retryable: set[str] = set()
        permanent: set[str] = set()
        for path in self.part_paths():
            t = pq.read_table(path, columns=["cache_key", "status", "retryable"])
            for key, status, again in zip(t.column("cache_key").to_pylist(), t.column("status").to_pylist(),
                                          t.column("retryable").to_pylist()):
                if status == "ok":
                    ok.add(key)
                else:
                    (retryable if again is not False else permanent).add(key)
        return ok, retryable - ok, permanent - ok

    def write_part(self, rows: list[dict[str, Any]]) -> Path:
        table = pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
        return Path(write_table_atomic(self.parts_dir / name, table).path)

    def read(self, keys: Sequence[str] | None = None) -> pa.Table:
        """Result rows for `keys` (all when None): for each key its newest ok completions, else its newest failure."""
        paths = self.part_paths()
        if not paths:
            return RESULT_SCHEMA.empty_table()
        dataset = ds.dataset([str(p) for p in paths], schema=RESULT_SCHEMA, format="parquet")
        table = dataset.to_table(filter=pc.field("cache_key").isin(list(keys)) if keys is not None else None)
        return newest_results(table)


def newest_results(table: pa.Table) -> pa.Table:
    """Keep, per cache key, the rows of its newest ok attempt, or of its newest attempt when none succeeded."""
    if table.num_rows == 0:
        return table
    rows = table.to_pylist()
    best: dict[str, tuple[tuple[int, float], list[dict]]] = {}
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["cache_key"], r["created_at"]), []).append(r)
    for (key, created), members in groups.items():
        rank = (1 if all(m["status"] == "ok" for m in members) else 0, created)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, members)
    kept = [r for _, members in best.values() for r in sorted(members, key=lambda m: m["completion_index"])]
    return pa.Table.from_pylist(kept, schema=RESULT_SCHEMA)


# ---- shards --------------------------------------------------------------------------------------------------
@dataclass
class Shard:
    index: int
    requests: list[GenerationRequest]
    keys: list[str]


@dataclass
class RetryPolicy:
    max_retries: int = 2
    backoff_s: float = 1.0


@dataclass
class Counts:
    """The one counter set of generation: what one shard produced (`ShardStats`) and, added up over the shards,
    what a run produced (`GenerationReport`)."""

    failed: int = 0  # requests recorded failed
    completions: int = 0
    prompt_tokens: int = 0  # once per request (all its completions share the prompt)
    completion_tokens: int = 0
    backend_s: float = 0.0  # time inside backend calls

    def add(self, other: "Counts") -> None:
        for f in fields(Counts):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class ShardStats(Counts):
    requests: int = 0  # requests generated in the shard
    part: str | None = None  # the Parquet part it wrote


def plan_shards(requests: Sequence[GenerationRequest], backend_identity: dict[str, Any], store: ResultStore,
                shard_size: int, retry_failed: bool = True) -> tuple[list[Shard], list[str], int]:
    """(pending shards, every request's key in input order, number of requests already done)."""
    check_unique_ids(requests)
    keys = [cache_key(r, backend_identity) for r in requests]
    ok, retryable, permanent = store.finished_keys()
    done = ok | permanent if retry_failed else ok | permanent | retryable
    pending = [(r, k) for r, k in zip(requests, keys) if k not in done]
    shards = [Shard(i // shard_size, [r for r, _ in pending[i:i + shard_size]],
                    [k for _, k in pending[i:i + shard_size]]) for i in range(0, len(pending), shard_size)]
    return shards, keys, len(requests) - len(pending)


def generate_isolated(backend: Backend, requests: list[GenerationRequest], policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep,
                      calls: dict[str, int] | None = None) -> list[tuple[GenerationResult, int]]:
    """Results for every request with the number of backend calls it was in. A failing call is split in halves
    until the failing request is alone; that one is retried with backoff, then recorded as failed."""
    calls = {} if calls is None else calls

    def attempt() -> list[GenerationResult]:
        for r in requests:
            calls[r.id] = calls.get(r.id, 0) + 1
        results = backend.generate(requests)
        check_results(requests, results)
        return results

    try:
        return [(r, calls[r.request_id]) for r in attempt()]
    except Exception as first_error:  # noqa: BLE001 - every error is recorded on the request it belongs to
        if len(requests) > 1:
            mid = len(requests) // 2
            return (generate_isolated(backend, requests[:mid], policy, sleep, calls)
                    + generate_isolated(backend, requests[mid:], policy, sleep, calls))
        error: Exception = first_error
        for retry in range(1, policy.max_retries + 1):
            sleep(policy.backoff_s * 2 ** (retry - 1))
            try:
                return [(r, calls[r.request_id]) for r in attempt()]
            except Exception as e:  # noqa: BLE001
                error = e
        rid = requests[0].id
        log.warning("request %s failed after %d calls: %s", rid, calls[rid], error)
        return [(GenerationResult.failure(rid, f"{type(error).__name__}: {error}"), calls[rid])]


def shard_rows(backend: Backend, shard: Shard, outcomes: list[tuple[GenerationResult, int]]) -> list[dict]:
    by_id = {r.id: (r, k) for r, k in zip(shard.requests, shard.keys)}
    now = time.time()
    rows = []
    for res, attempts in outcomes:
        req, key = by_id[res.request_id]
        rows.append({
            "id": f"{key}-{res.completion_index}", "request_id": req.id, "completion_index": res.completion_index,
            "text": res.text, "finish_reason": res.finish_reason, "prompt_tokens": res.prompt_tokens,
            "completion_tokens": res.completion_tokens, "model": backend.model, "backend": backend.name,
            "sampling_params": req.sampling.to_json(), "template_id": req.template_id,
            "parent_ids": list(req.parent_ids), "status": res.status, "error": res.error,
            "retryable": res.retryable if res.status != "ok" else None, "attempts": attempts,
            "token_logprobs": res.token_logprobs, "cache_key": key, "created_at": now,
        })
    return rows


def generate_shard(backend: Backend, shard: Shard, policy: RetryPolicy) -> tuple[list[dict], ShardStats]:
    t0 = time.perf_counter()
    outcomes = generate_isolated(backend, shard.requests, policy)
    stats = ShardStats(requests=len(shard.requests), backend_s=time.perf_counter() - t0)
    for res, _ in outcomes:
        if res.status == "ok":
            stats.completions += 1
            stats.completion_tokens += res.completion_tokens or 0
        else:
            stats.failed += 1
    seen: set[str] = set()
    for res, _ in outcomes:
        if res.request_id not in seen:
            seen.add(res.request_id)
            stats.prompt_tokens += res.prompt_tokens or 0
    return shard_rows(backend, shard, outcomes), stats


def run_shard(shard: Shard, backend: Backend | BackendConfig, store_dir: str | os.PathLike,
              policy: RetryPolicy | None = None) -> ShardStats:
    """One shard, start to finish (generate, write): the unit a task runner or a remote worker takes."""
    backend = backend if isinstance(backend, Backend) else get_backend(backend)
    rows, stats = generate_shard(backend, shard, policy or RetryPolicy())
    stats.part = str(ResultStore(store_dir).write_part(rows))
    return stats


# ---- the report ----------------------------------------------------------------------------------------------
@dataclass
class GenerationReport(Counts):
    requests: int = 0
    cached: int = 0
    generated: int = 0  # the shards' `requests`, added up
    wall_s: float = 0.0
    parts_written: int = 0
    cpu_util_pct: float | None = None
    gpu_util_pct: float | None = None
    model: str = ""
    backend: str = ""
    parts: list[str] = field(default_factory=list)
    # the counters a run adds up over its rounds (`Rounds.summary`, stats.json), in stats.json's order
    TOTALS: ClassVar[tuple[str, ...]] = ("requests", "cached", "generated", "failed", "completions", "prompt_tokens",
                                         "completion_tokens", "parts_written")

    @property
    def requests_per_s(self) -> float:
        return self.generated / self.wall_s if self.wall_s else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s else 0.0

    def add(self, s: ShardStats) -> None:
        super().add(s)
        self.generated += s.requests
        if s.part:
            self.parts_written += 1
            self.parts.append(s.part)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("parts")
        d = {**{k: d.pop(k) for k in ("requests", "cached", "generated")}, **d}  # stats.json's order: these first
        d.update(requests_per_s=round(self.requests_per_s, 3), tokens_per_s=round(self.tokens_per_s, 1))
        return d

    def table(self) -> str:
        util = lambda v: "n/a" if v is None else f"{v:.0f}%"  # noqa: E731
        lines = [
            f"generation  {self.backend} {self.model}",
            f"requests    {self.requests} ({self.cached} cached, {self.generated} generated, {self.failed} failed)",
            f"completions {self.completions}  tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion",
            f"time        {self.wall_s:.1f} s wall, {self.backend_s:.1f} s in the backend",
            f"throughput  {self.requests_per_s:.2f} req/s, {self.tokens_per_s:.1f} completion tok/s",
            f"utilisation CPU {util(self.cpu_util_pct)}, GPU {util(self.gpu_util_pct)}",
        ]
        return "\n".join(lines)


class UtilisationSampler:
    """Mean CPU (psutil, whole machine) and GPU (NVML) utilisation while a run lasts; None where unmeasurable."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.cpu: list[float] = []
        self.gpu: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "UtilisationSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            import psutil

            psutil.cpu_percent(None)
        except ImportError:
            psutil = None
        handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001 - no NVML, no GPU numbers
            pynvml = None
        while not self._stop.wait(self.interval_s):
            if psutil is not None:
                self.cpu.append(psutil.cpu_percent(None))
            if handles:
                self.gpu.append(sum(pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles) / len(handles))

    @property
    def cpu_mean(self) -> float | None:
        return sum(self.cpu) / len(self.cpu) if self.cpu else None

    @property
    def gpu_mean(self) -> float | None:
        return sum(self.gpu) / len(self.gpu) if self.gpu else None


# ---- the driver ----------------------------------------------------------------------------------------------
def run_generation(requests: Sequence[GenerationRequest], backend: Backend | BackendConfig,
                   store_dir: str | os.PathLike, *, shard_size: int = 512, policy: RetryPolicy | None = None,
                   retry_failed: bool = True, workers: int = 1, device_groups: Sequence[str] | None = None,
                   progress: bool = True) -> GenerationReport:
    """Generate every request not already in the store; return the run's report. Read the rows with
    `load_results(store_dir, requests, backend)`."""
    policy = policy or RetryPolicy()
    if workers == 1 and getattr(backend, "kind", None) == "vllm" and backend.data_parallel_size > 1:
        workers = backend.data_parallel_size  # vLLM data parallel = one engine per worker process
        device_groups = device_groups or gpu_groups(backend.data_parallel_size, backend.tensor_parallel_size)
    engine = backend if isinstance(backend, Backend) else get_backend(backend)
    store = ResultStore(store_dir)
    shards, _, cached = plan_shards(requests, engine.identity(), store, shard_size, retry_failed)
    report = GenerationReport(requests=len(requests), cached=cached, model=engine.model, backend=engine.name)
    bar = _progress_bar(len(requests), cached, progress)
    t0 = time.perf_counter()
    with UtilisationSampler() as sampler:
        if workers > 1 and shards:
            if isinstance(backend, Backend):
                raise ValueError("workers > 1 needs a backend config (each worker process builds its own engine)")
            _run_in_processes(shards, backend, store_dir, policy, workers, device_groups, report, bar, t0)
        else:
            _run_pipelined(shards, engine, store, policy, report, bar, t0)
    report.wall_s = time.perf_counter() - t0
    report.cpu_util_pct, report.gpu_util_pct = sampler.cpu_mean, sampler.gpu_mean
    bar.close()
    return report


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="req", desc="generate", disable=not enabled, dynamic_ncols=True)


def _tick(bar, report: GenerationReport, stats: ShardStats, t0: float, shown: int = 0) -> None:
    """A shard is written: count it; move the bar by what per-batch progress has not shown yet; after the first
    shard, say how long the rest should take."""
    report.add(stats)
    bar.update(max(0, stats.requests - shown))
    elapsed = time.perf_counter() - t0
    bar.set_postfix(tok_s=f"{report.completion_tokens / elapsed:.1f}" if elapsed else "-", failed=report.failed)


def _estimate(bar, done: int, left: int, t0: float) -> None:
    """After the first shard: how long the rest should take."""
    elapsed = time.perf_counter() - t0
    if left <= 0 or not done:
        return
    msg = (f"first shard: {done} requests in {elapsed:.1f} s; about {_duration(elapsed / done * left)} left for the "
           f"other {left}")
    log.info(msg)
    if not bar.disable:
        bar.write(msg)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _run_pipelined(shards: list[Shard], backend: Backend, store: ResultStore, policy: RetryPolicy,
                   report: GenerationReport, bar, t0: float) -> None:
    """Generate shard k+1 while shard k is written. Progress moves per backend batch where the backend reports it."""
    shown = {"n": 0}

    def on_progress(k: int) -> None:
        shown["n"] += k
        bar.update(k)

    previous_hook = backend.on_progress
    backend.on_progress = on_progress
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="part-writer") as writer:
            pending: tuple[Future, ShardStats, int] | None = None
            total = sum(len(sh.requests) for sh in shards)
            for k, shard in enumerate(shards):
                shown["n"] = 0
                rows, stats = generate_shard(backend, shard, policy)
                if k == 0:
                    _estimate(bar, stats.requests, total - stats.requests, t0)
                streamed = min(shown["n"], stats.requests)
                if pending is not None:
                    _finish(pending, report, bar, t0)
                pending = (writer.submit(store.write_part, rows), stats, streamed)
            if pending is not None:
                _finish(pending, report, bar, t0)
    finally:
        backend.on_progress = previous_hook


def _finish(pending: tuple[Future, ShardStats, int], report: GenerationReport, bar, t0: float) -> None:
    future, stats, shown = pending
    stats.part = str(future.result())
    _tick(bar, report, stats, t0, shown)


def _run_in_processes(shards: list[Shard], cfg: BackendConfig, store_dir, policy: RetryPolicy, workers: int,
                      device_groups: Sequence[str] | None, report: GenerationReport, bar, t0: float) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        for group in (device_groups or [])[:workers]:
            queue.put(group)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(queue,)) as pool:
            futures = [pool.submit(run_shard, shard, cfg, str(store_dir), policy) for shard in shards]
            total = sum(len(sh.requests) for sh in shards)
            for i, fut in enumerate(as_completed(futures)):
                _tick(bar, report, fut.result(), t0)
                if i == 0:
                    _estimate(bar, report.generated, total - report.generated, t0)


def gpu_groups(engines: int, gpus_per_engine: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES values for `engines` engines of `gpus_per_engine` GPUs each: ["0,1", "2,3"]."""
    return [",".join(str(e * gpus_per_engine + g) for g in range(gpus_per_engine)) for e in range(engines)]


def _init_worker(queue) -> None:
    """Pin this worker to its GPU group before any CUDA library is imported: one engine per GPU group."""
    try:
        group = queue.get_nowait()
    except Exception:  # noqa: BLE001 - no groups given: the worker sees what the parent sees
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = group


def load_results(store_dir: str | os.PathLike, requests: Sequence[GenerationRequest],
                 backend: Backend | BackendConfig) -> pa.Table:
    """The result rows of `requests` (newest per request), in request order then completion index."""
    engine = backend if isinstance(backend, Backend) else get_backend(backend)
    ident = engine.identity()
    keys = [cache_key(r, ident) for r in requests]
    table = ResultStore(store_dir).read(keys)
    order = {k: i for i, k in enumerate(keys)}
    rank = [order[k] * 1_000_000 + ci for k, ci in zip(table.column("cache_key").to_pylist(),
                                                       table.column("completion_index").to_pylist())]
    return table.take(pa.array(sorted(range(len(rank)), key=rank.__getitem__), pa.int64()))


def iter_texts(table: pa.Table, status: str = "ok") -> Iterable[str]:
    for text, st in zip(table.column("text").to_pylist(), table.column("status").to_pylist()):
        if st == status and text is not None:
            yield text
