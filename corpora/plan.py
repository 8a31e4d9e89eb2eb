"""Plan a document run: which inputs exist, which are already finished in this output folder (resume)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from corpora.readers import expand_inputs
from corpora.staging import StagedInput, is_done

WORK_DIR = "_work"
OUTPUT_ENTRIES = ("data", "rejected", "quarantine", WORK_DIR, "manifest.json", "stats.json")


@dataclass
class RunPlan:
    out_dir: Path
    staging: Path
    items: list[StagedInput]
    pending: list[StagedInput]
    config_hash: str

    @property
    def finished(self) -> list[StagedInput]:
        return [i for i in self.items if i not in self.pending]


def clear_output(out_dir: Path, kinds: tuple[str, ...] = ()) -> None:
    """`overwrite=true`: remove what a previous run wrote (and nothing else in the folder): the shared entries
    plus the pipeline's own output kinds (e.g. `works`, `slices`)."""
    for name in OUTPUT_ENTRIES + tuple(kinds):
        p = out_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def plan_run(inputs: list[str], out_dir: Path, config_hash: str, overwrite: bool) -> RunPlan:
    paths = expand_inputs(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        clear_output(out_dir)
    staging = out_dir / WORK_DIR / "inputs"
    staging.mkdir(parents=True, exist_ok=True)
    items = [StagedInput.from_path(p) for p in paths]
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise ValueError("two inputs map to the same staging key")
    pending = [i for i in items if not is_done(staging, i, config_hash)]
    return RunPlan(out_dir, staging, items, pending, config_hash)


class OutputError(ValueError):
    """An output folder that cannot be used; the message names it and the reason."""


def check_output(output: str | Path, inputs: list[str] = ()) -> Path:
    """Before a run: the output is (or can be made) a writable folder, and it neither equals nor contains nor sits
    inside an input (a run would read its own `data/` and `_work/` back, or overwrite its input)."""
    out = Path(output).expanduser().resolve()
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"is under a file ({parent})"
                raise OutputError(f"output {out} {where}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"output {out}: {parent} is not writable")
            break
    for raw in inputs:
        inp = Path(raw).expanduser().resolve()
        if inp == out or out in inp.parents:
            raise OutputError(f"input {raw} is inside the output folder {out}: give another --output (a run "
                              f"rewrites its output's data/ and _work/)")
        if inp.is_dir() and inp in out.parents:
            raise OutputError(f"output {out} is inside the input folder {raw}: a rerun would read its own output")
    return out
