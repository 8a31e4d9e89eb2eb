"""Run the document filter stage: one datatrove task per pending input file, on the configured executor.

Each task reads its input, applies the filter steps and writes kept/rejected/quarantined rows to the input's
staging folder, ending with `done.json`. A task that dies leaves no `done.json`, so a rerun redoes that input.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from corpora.readers import FieldMap
from corpora.staging import StagedInput, TaskLayout
from filters.execution import ExecutorConfig, run_and_wait
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
    done = [layout.dir(r) / "done.json" for r in range(len(pending))]

    def progress(n: int) -> None:
        import json

        on_progress(n, sum(json.loads(p.read_text()).get("records", 0) for p in done if p.exists()))

    run_and_wait(pipeline, len(pending), exec_cfg, logging_dir,
                 outstanding=lambda: [str(p) for p in done if not p.exists()],
                 on_progress=progress if on_progress else None, timeout_s=wait_timeout_s)
    missing = [t.path for r, t in enumerate(pending) if not (layout.dir(r) / "done.json").exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} input(s) did not finish the filter stage (see logs in {logging_dir}): "
                           + ", ".join(missing[:5]))
