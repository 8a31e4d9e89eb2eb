"""One run scaffold for every flow: start (output folder, overwrite of the pipeline's own output kinds), publish
each output kind as shards, and finish (stats.json with the row invariant, manifest.json, console summary, Prefect
markdown artifact; a broken invariant fails the run after everything is written, so it can be inspected).

The manifest says `status: publishing` from before the first output folder is swapped until the run finishes
(`complete`): a run killed between two swaps leaves a manifest that says so, never a stale `complete`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from corpora.atomic import atomic_write_json
from corpora.manifest import check_invariant, now_iso, write_manifest
from corpora.plan import clear_output
from corpora.publish import publish_kind
from flows.config import config_hash
from flows.reporting import console, publish_artifact


@dataclass
class Run:
    pipeline: str
    config: Any  # the pipeline's validated config (RunConfig-like: output, overwrite, shard_rows, shard_mb)
    out_dir: Path
    kinds: tuple[str, ...]
    started: str
    outputs: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def start(cls, pipeline: str, config: Any, kinds: tuple[str, ...] = ("data", "rejected", "quarantine"),
              clear: bool = True) -> "Run":
        out_dir = Path(config.output or f"output/{pipeline}").resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        if config.overwrite and clear:
            clear_output(out_dir, kinds)
        return cls(pipeline, config, out_dir, tuple(kinds), now_iso())

    def publish(self, kind: str, files: Iterable[Path], schema: pa.Schema, *, under: Path | None = None,
                name: str | None = None, columns: list[str] | None = None) -> list[dict]:
        """Publish staged Parquet `files` as the shards of `kind` (under `out_dir/under` when given, recorded in
        the manifest as `name`)."""
        if not self.outputs:  # before the first swap: a reader can tell a half-published folder
            self._write_manifest("publishing")
        base = self.out_dir / under if under else self.out_dir
        shards = publish_kind(base, kind, [Path(f) for f in files], schema, shard_rows=self.config.shard_rows,
                              shard_mb=self.config.shard_mb, columns=columns)
        prefix = f"{under}/" if under else ""
        out = [{**s.as_dict(), "path": prefix + s.path} for s in shards]
        self.outputs[name or kind] = out
        return out

    def _write_manifest(self, status: str, inputs: list[dict] | None = None, cfg_hash: str | None = None) -> None:
        write_manifest(self.out_dir, pipeline=self.pipeline, config=self.config.model_dump(mode="json"),
                       config_hash=cfg_hash or config_hash(self.config), inputs=inputs or [],
                       outputs=self.outputs, started=self.started, status=status)

    def rows(self, kind: str) -> int:
        return sum(s["rows"] for s in self.outputs.get(kind, []))

    def finish(self, stats: dict, *, records_read: int | None = None, invariant: dict | None = None,
               inputs: list[dict] | None = None, summary: Any = None, markdown: str | None = None,
               cfg_hash: str | None = None) -> dict:
        """Write stats.json (with the invariant: data + rejected + quarantine == read, unless given) and the
        manifest, print `summary` (a rich renderable or text), publish `markdown` as the run's artifact."""
        if invariant is None:
            invariant = check_invariant(records_read or 0, {k: self.rows(k) for k in ("data", "rejected",
                                                                                     "quarantine")
                                                            if k in self.outputs})
        stats = {**stats, "invariant": invariant}
        atomic_write_json(self.out_dir / "stats.json", stats)
        self._write_manifest("complete" if invariant["holds"] else "invariant_failed", inputs, cfg_hash)
        from flows.run_report import write_run_report  # report.html + README.md card; logs, never raises

        write_run_report(self.out_dir, self.pipeline)
        if summary is not None:
            console.print(summary)
        publish_artifact(f"{self.pipeline}-summary", markdown or f"# {self.pipeline}: {self.out_dir}\n\n```\n"
                                                                 f"{invariant}\n```")
        if not invariant["holds"]:
            raise RuntimeError(f"row invariant broken: {invariant}")
        return stats
