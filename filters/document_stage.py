"""Run the document filter stage: one datatrove task per pending input file, on the configured executor.

Each task reads its input, applies the filter steps and writes kept/rejected/quarantined rows to the input's
staging folder, ending with `done.json`. A task that dies leaves no `done.json`, so a rerun redoes that input.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from corpora.readers import FieldMap
from corpora.staging import StagedInput, TaskLayout
from filters.execution import ExecutorConfig, make_executor
from filters.steps import FilterStep, InputReaderStep, StagedWriterStep
from filters.web_steps import score_fields


def run_document_stage(pending: list[StagedInput], staging: Path, config_hash: str,
                       build_steps: Callable[[TaskLayout], list[FilterStep]], exec_cfg: ExecutorConfig,
                       fields: FieldMap = FieldMap(), shard_rows: int = 100_000,
                       on_progress: Callable[[int, int], None] | None = None, logging_dir: Path | None = None,
                       wait_timeout_s: float | None = None) -> None:
    """`on_progress(inputs_done, records_done)` is called as inputs finish."""
    if not pending:
        return
    layout = TaskLayout(str(staging), tuple(pending), config_hash)
    steps = build_steps(layout)
    pipeline = [InputReaderStep(layout, fields), *steps, StagedWriterStep(layout, score_fields(steps), shard_rows)]
    logging_dir = logging_dir or staging.parent / "datatrove" / time.strftime("%Y%m%dT%H%M%S")
    executor = make_executor(pipeline, tasks=len(pending), cfg=exec_cfg, logging_dir=str(logging_dir))

    errors: list[BaseException] = []

    def target() -> None:
        try:
            executor.run()
        except BaseException as e:  # surfaced below, after the progress loop
            errors.append(e)

    th = threading.Thread(target=target, name="datatrove-executor", daemon=True)
    th.start()
    reported = -1
    started = time.monotonic()
    while True:
        alive = th.is_alive()
        done = [layout.dir(r) / "done.json" for r in range(len(pending))]
        finished = [p for p in done if p.exists()]
        if on_progress and len(finished) != reported:
            import json

            recs = sum(json.loads(p.read_text()).get("records", 0) for p in finished)
            on_progress(len(finished), recs)
            reported = len(finished)
        # local and Ray executors block in run(); Slurm returns after submitting, so we wait for done.json files
        if not alive and (exec_cfg.executor != "slurm" or len(finished) == len(done)):
            break
        if wait_timeout_s and time.monotonic() - started > wait_timeout_s:
            break
        time.sleep(0.2 if alive else 5)
    if errors:
        raise errors[0]
    missing = [t.path for r, t in enumerate(pending) if not (layout.dir(r) / "done.json").exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} input(s) did not finish the filter stage (see logs in {logging_dir}): "
                           + ", ".join(missing[:5]))
