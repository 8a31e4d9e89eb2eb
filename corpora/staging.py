"""Per-input staging: what one input file became (kept / rejected / quarantined rows, per-step stats).

`_work/inputs/<key>/` holds `kept/`, `rejected/`, `quarantine/` Parquet parts, `read.json`, `steps/*.json` and,
written last and atomically, `done.json`. An input is finished only when `done.json` exists and names the same
input sha256 and config hash; anything else in the folder is redone.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from corpora.atomic import atomic_write_json, read_json
from corpora.hashing import sha256_file, short_hash


@dataclass(frozen=True)
class StagedInput:
    key: str
    path: str
    sha256: str
    size: int

    @classmethod
    def from_path(cls, path: Path) -> "StagedInput":
        sha = sha256_file(path)
        return cls(key=f"{path.stem[:40]}-{short_hash(str(path), sha, length=12)}", path=str(path), sha256=sha,
                   size=path.stat().st_size)


@dataclass(frozen=True)
class TaskLayout:
    """Which input each datatrove rank processes, and where its staging folder is."""

    root: str
    tasks: tuple[StagedInput, ...]
    config_hash: str

    def task(self, rank: int) -> StagedInput:
        return self.tasks[rank]

    def dir(self, rank: int) -> Path:
        return Path(self.root) / self.tasks[rank].key


def input_dir(root: str | Path, item: StagedInput) -> Path:
    return Path(root) / item.key


def is_done(root: str | Path, item: StagedInput, config_hash: str) -> bool:
    done = read_json(input_dir(root, item) / "done.json")
    return bool(done) and done.get("sha256") == item.sha256 and done.get("config_hash") == config_hash


def reset_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def write_step_stats(stage_dir: Path, order: int, name: str, stats: dict) -> None:
    atomic_write_json(stage_dir / "steps" / f"{order:02d}-{name}.json", {"name": name, **stats})


def read_step_stats(stage_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((stage_dir / "steps").glob("*.json"))]


def mark_done(stage_dir: Path, item: StagedInput, config_hash: str, counts: dict) -> dict:
    read = read_json(stage_dir / "read.json", {})
    done = {
        "path": item.path, "sha256": item.sha256, "config_hash": config_hash,
        "records": read.get("records", 0), "quarantined": read.get("quarantined", 0),
        "kept": counts["kept"], "rejected": counts["rejected"],
        # input records behind file-level quarantine rows: known count, and rows whose count is unknowable
        "lost_records": read.get("lost_records", 0), "lost_unknown": read.get("lost_unknown", 0),
        "steps": read_step_stats(stage_dir),
    }
    if done["kept"] + done["rejected"] + done["quarantined"] != done["records"]:
        raise RuntimeError(
            f"{item.path}: row invariant broken in staging: kept {done['kept']} + rejected {done['rejected']} + "
            f"quarantined {done['quarantined']} != read {done['records']}"
        )
    atomic_write_json(stage_dir / "done.json", done)
    return done


def parts(stage_dir: Path, kind: str) -> list[Path]:
    return sorted((stage_dir / kind).glob("part-*.parquet"))
