"""One run scaffold for every flow: start (output folder, overwrite of the pipeline's own output kinds), publish
each output kind as shards, and finish (stats.json with the row invariant, manifest.json, console summary, Prefect
markdown artifact; a broken invariant fails the run after everything is written, so it can be inspected).

The manifest says `status: publishing` from before the first output folder is swapped until the run finishes
(`complete`): a run killed between two swaps leaves a manifest that says so, never a stale `complete`."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from corpora.atomic import atomic_write_json
from corpora.layout import Layout
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
    layout: Layout  # what this run publishes (corpora/layout.py): the folders and the manifest's names
    started: str
    outputs: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def start(cls, pipeline: str, config: Any, kinds: Layout | Iterable[str] = Layout.documents(),
              clear: bool = True) -> "Run":
        """`kinds`: the pipeline's `Layout` (or plain kind names); `overwrite` clears its kinds."""
        layout = kinds if isinstance(kinds, Layout) else Layout.named(kinds)
        out_dir = Path(config.output or f"output/{pipeline}").resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        if config.overwrite and clear:
            clear_output(out_dir, layout.names())
        return cls(pipeline, config, out_dir, layout, now_iso())

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.layout.names()

    def publish(self, kind: str, files: Iterable[Path | pa.Table], schema: pa.Schema | None = None, *,
                part: str | tuple[str, str] | None = None) -> list[dict]:
        """Publish staged parts (Parquet files or tables) as the shards of `kind` (or of one partition value / (group,
        split) / table of it: `part`) into the folder the layout names, recorded in the manifest under that path.
        `schema`: when no part is staged (default: the kind's declared one)."""
        k = self.layout.kind(kind)
        return self._publish(self.layout.path(kind, part), list(files), schema if schema is not None else k.schema,
                             project=k.project)

    def publish_at(self, path: str, files: Iterable[Path | pa.Table], schema: pa.Schema) -> list[dict]:
        """Publish at `path`, a folder another run's manifest names (`remove` writes a new version of any run, so
        its layout is the source run's)."""
        return self._publish(Path(path).as_posix(), list(files), schema)

    def _publish(self, path: str, files: list, schema: pa.Schema | None, project: bool = False) -> list[dict]:
        if not self.outputs:  # before the first swap: a reader can tell a half-published folder
            self._write_manifest("publishing")
            for old in self.layout.retired:  # an earlier run's kind this run does not publish
                shutil.rmtree(self.out_dir / old, ignore_errors=True)
        if schema is None:
            raise ValueError(f"{self.pipeline}: output kind {path!r} has no schema (declare it in the layout)")
        base, leaf = (self.out_dir / path).parent, path.rsplit("/", 1)[-1]
        shards = publish_kind(base, leaf, files, schema, shard_rows=self.config.shard_rows,
                              shard_mb=self.config.shard_mb, columns=schema.names if project else None)
        prefix = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        out = [{**s.as_dict(), "path": prefix + s.path} for s in shards]
        self.outputs[path] = out
        return out

    def publish_partitions(self, kind: str, files: dict[str, Path | pa.Table], schema: pa.Schema | None = None
                           ) -> None:
        """`kind` as Hive partitions, one per value (`{value: staged part}`), each swapped in atomically;
        partitions of an earlier run that this run does not have, and loose part files, are removed after."""
        col = self.layout.kind(kind).partition_by
        for value, f in files.items():
            self.publish(kind, [f], schema, part=value)
        root = self.out_dir / kind
        root.mkdir(parents=True, exist_ok=True)
        names = {f"{col}={v}" for v in files}
        for p in root.iterdir():
            if p.name not in names and (p.name.startswith(f"{col}=") or p.name.startswith("part-")):
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def _write_manifest(self, status: str, inputs: list[dict] | None = None, cfg_hash: str | None = None) -> None:
        write_manifest(self.out_dir, pipeline=self.pipeline, config=self.config.model_dump(mode="json"),
                       config_hash=cfg_hash or config_hash(self.config), inputs=inputs or [],
                       outputs=self.outputs, started=self.started, status=status)

    def rows(self, kind: str) -> int:
        """Rows published as `kind`: a folder's, or all partitions / splits of a declared kind together."""
        return sum(s["rows"] for name, shards in self.outputs.items()
                   if name == kind or (name.startswith(kind + "/") and self._whole(kind)) for s in shards)

    def _whole(self, kind: str) -> bool:
        k = self.layout.kind(kind)
        return bool(k.partition_by or k.splits)

    def finish(self, stats: dict, *, records_read: int | None = None, invariant: dict | None = None,
               inputs: list[dict] | None = None, summary: Any = None, markdown: str | None = None,
               cfg_hash: str | None = None) -> dict:
        """Write stats.json (with the invariant: data + rejected + quarantine == read, unless given) and the
        manifest, print `summary` (a rich renderable or text), publish `markdown` as the run's artifact."""
        if invariant is None:
            invariant = check_invariant(records_read or 0, {k: self.rows(k) for k in ("data", "rejected",
                                                                                     "quarantine")
                                                            if k in self.outputs or self.rows(k)})
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
