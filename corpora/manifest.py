"""`manifest.json` (what went in, what came out, with which config) and `stats.json` (per-filter counts)."""
from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import Any

from corpora.atomic import atomic_write_json, read_json

PACKAGE = "flows-data-engine"


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_manifest(out_dir: Path, *, pipeline: str, config: dict, config_hash: str, inputs: list[dict],
                   outputs: dict[str, list[dict]], started: str, status: str, extra: dict | None = None) -> dict:
    manifest = {
        "pipeline": pipeline,
        "package_version": package_version(),
        "status": status,
        "started": started,
        "finished": now_iso(),
        "config_hash": config_hash,
        "config": config,
        "inputs": inputs,
        "outputs": outputs,
        **(extra or {}),
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    return read_json(out_dir / "manifest.json")


def aggregate_step_stats(per_input: list[list[dict]]) -> dict[str, dict]:
    """Sum per-input step stats into one entry per filter, in pipeline order."""
    total: dict[str, dict] = {}
    for steps in per_input:
        for s in steps:
            agg = total.setdefault(s["name"], {"docs_in": 0, "removed": 0, "chars_removed": 0, "seconds": 0.0,
                                               "rules": {}})
            for k in ("docs_in", "removed", "chars_removed"):
                agg[k] += s.get(k, 0)
            agg["seconds"] = round(agg["seconds"] + s.get("seconds", 0.0), 4)
            for r, n in s.get("rules", {}).items():
                agg["rules"][r] = agg["rules"].get(r, 0) + n
    for agg in total.values():
        agg["docs_out"] = agg["docs_in"] - agg["removed"]
        agg["docs_per_s"] = round(agg["docs_in"] / agg["seconds"], 1) if agg["seconds"] else None
    return total


def check_invariant(records_read: int, rows: dict[str, int]) -> dict:
    ok = rows.get("data", 0) + rows.get("rejected", 0) + rows.get("quarantine", 0) == records_read
    return {"records_read": records_read, **{f"rows_{k}": v for k, v in rows.items()}, "holds": ok}
