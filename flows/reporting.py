"""What a run tells its user: Prefect run logger, a progress bar per stage, the end-of-run summary table
(also published as a Prefect markdown artifact)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)

# A user error (bad input, bad config, an unmeetable plan): the CLI prints it as one line, exit 2. Pipelines raise
# one of these (InputError, ConfigError, PlanError, RuleError, OutputError ... are ValueErrors); anything else is a
# bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)

WIDE = 200  # the console width when stderr is not a terminal (and COLUMNS is not set): tables are never squeezed


def is_user_error(exc: BaseException | None) -> bool:
    return isinstance(exc, USER_ERRORS)


class _ConsoleGate(logging.Filter):
    """On Prefect's console handler: quiet (default) lets through warnings and errors only, and never a user
    error's traceback (the CLI prints its one line); verbose lets everything through. The API handler (the
    Prefect UI's logs) is not filtered."""

    verbose = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        if record.levelno < logging.WARNING:
            return False
        return not (record.exc_info and is_user_error(record.exc_info[1]))


_GATE = _ConsoleGate()


class _LoguruStderrGate:
    """Stands in for loguru's logger inside `datatrove.utils.logging`, whose task logger adds a stderr sink at
    INFO (the pipeline and stats dumps: hundreds of lines a run). Quiet: that sink gets WARNING; the task's log
    file keeps every line. Everything else is loguru's own logger (same frames, same records)."""

    verbose = False

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def add(self, sink, *args, **kwargs):
        if not self.verbose and sink is sys.stderr:
            kwargs["level"] = "WARNING"
        return self._real.add(sink, *args, **kwargs)


def configure_console(verbose: bool = False) -> None:
    """The console of one `flows run`: quiet by default (progress bars, the summary tables, warnings, the
    one-line error), `verbose` for Prefect's and datatrove's log lines. Tables use the terminal's full width, or
    WIDE columns when stderr is not a terminal."""
    console.width = None  # re-detect (a test may run several commands in one process)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = WIDE
    _GATE.verbose = verbose
    try:
        from prefect.logging.configuration import ensure_logging_setup
        from prefect.logging.handlers import PrefectConsoleHandler
    except ImportError:  # pragma: no cover
        PrefectConsoleHandler = None
    if PrefectConsoleHandler is not None:
        ensure_logging_setup()  # Prefect's console handler exists from here on (later set-ups are incremental)
        loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                          if isinstance(lg, logging.Logger)]
        for lg in loggers:
            for h in lg.handlers:
                if isinstance(h, PrefectConsoleHandler) and _GATE not in h.filters:
                    h.addFilter(_GATE)
    try:
        import datatrove.utils.logging as dt_logging
    except ImportError:  # pragma: no cover
        return
    if not isinstance(dt_logging.logger, _LoguruStderrGate):
        dt_logging.logger = _LoguruStderrGate(dt_logging.logger)
    dt_logging.logger.verbose = verbose
    dt_logging.setup_default_logger()  # its stderr sink again, at the level just chosen


def run_logger() -> logging.Logger:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return logging.getLogger("flows")


class StageProgress:
    """A rich progress bar: `update(done_units, docs)`; shows docs and docs/s."""

    def __init__(self, progress: Progress, task_id, started: float):
        self.progress, self.task_id, self.started = progress, task_id, started

    def update(self, completed: int, docs: int) -> None:
        rate = docs / max(time.monotonic() - self.started, 1e-9)
        self.progress.update(self.task_id, completed=completed, docs=f"{docs:,} docs, {rate:,.0f} docs/s")


@contextlib.contextmanager
def stage_progress(description: str, total: int, unit: str = "inputs") -> Iterator[StageProgress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        TextColumn("{task.fields[docs]}"), TimeElapsedColumn(), console=console,
        disable=not sys.stderr.isatty() and False,
    )
    with progress:
        tid = progress.add_task(description, total=total, docs="")
        yield StageProgress(progress, tid, time.monotonic())


def summary_table(title: str, stats: dict) -> Table:
    t = Table(title=title)
    for col in ("stage", "docs in", "kept", "removed", "chars removed", "seconds", "docs/s"):
        t.add_column(col, justify="right" if col != "stage" else "left")
    for name, s in stats["filters"].items():
        t.add_row(name, f"{s['docs_in']:,}", f"{s['docs_out']:,}", f"{s['removed']:,}", f"{s['chars_removed']:,}",
                  f"{s['seconds']:.2f}", f"{s['docs_per_s'] or 0:,.0f}")
    inv = stats["invariant"]
    t.add_row("[bold]total", f"{inv['records_read']:,}", f"{inv.get('rows_data', 0):,}",
              f"{inv.get('rows_rejected', 0):,}", "", "", "",
              end_section=True)
    t.caption = (f"quarantined {inv.get('rows_quarantine', 0):,}; data + rejected + quarantine == read: "
                 f"{'yes' if inv['holds'] else 'NO'}" + lost_line(stats.get("lost")))
    return t


def summary_markdown(title: str, stats: dict) -> str:
    lines = [f"# {title}", "", "| stage | docs in | kept | removed | chars removed | seconds |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in stats["filters"].items():
        lines.append(f"| {name} | {s['docs_in']} | {s['docs_out']} | {s['removed']} | {s['chars_removed']} | "
                     f"{s['seconds']:.2f} |")
    inv = stats["invariant"]
    lines += ["", f"Records read: {inv['records_read']}; data {inv.get('rows_data', 0)}, rejected "
              f"{inv.get('rows_rejected', 0)}, quarantine {inv.get('rows_quarantine', 0)}; invariant holds: "
              f"{inv['holds']}" + lost_line(stats.get("lost"))]
    return "\n".join(lines)


def lost_line(lost: dict | None) -> str:
    """"; LOST: 10 records + an unknown number after a cut in 1 input" (empty when nothing was lost)."""
    if not lost or not (lost.get("records") or lost.get("inputs_with_unknown_loss")):
        return ""
    parts = [f"{lost['records']:,} records"] if lost.get("records") else []
    if lost.get("inputs_with_unknown_loss"):
        n = len(lost["inputs_with_unknown_loss"])
        parts.append(f"an unknown number after a cut in {n} input{'s' * (n > 1)}")
    return "; LOST (in quarantine as whole files/tails): " + " + ".join(parts)


def publish_artifact(key: str, markdown: str) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown=markdown, key=key, description="end-of-run summary")
    except Exception as e:  # an artifact is a report, never a reason to fail a finished run
        run_logger().warning("could not publish the summary artifact: %s", e)
