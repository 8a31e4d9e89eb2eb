"""The progress-bar shape the rooms' steps take (`progress(description, total, unit)` -> a context manager whose
value has `update(completed, docs)`): flows pass `flows.reporting.stage_progress`; `no_progress` is the silent
default when a step runs outside a flow (tests, notebooks)."""
from __future__ import annotations

import contextlib


class _NoBar:
    def update(self, completed: int, docs: int) -> None:
        pass


@contextlib.contextmanager
def no_progress(description: str, total: int, unit: str = "inputs"):
    yield _NoBar()
