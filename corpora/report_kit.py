"""The generic half of a run's `report.html`: reading a run's outputs (`manifest.json`, `stats.json`, the Parquet
shards, only the needed columns, never text), the page (`Section`, `Report`, `render_html`: one self-contained HTML
file, no script, no network) and `ReportSection`, the declaration a report section makes. It knows no pipeline:
the sections that know a pipeline's stats live beside that pipeline (`filters/report_sections.py`,
`generators/report_sections.py`, `generators/sphinx_report.py`, `filters/dating/report.py`, ...) and are listed,
in page order, in `flows/run_report.py:REPORT_SECTIONS`. The figures are in `corpora/report_figures.py`.

Histograms use at most `SAMPLE_ROWS` rows (an even stride over the shards), and the figure says when it is a sample.
"""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import read_json
from corpora.layout import Layout

SAMPLE_ROWS = 20_000
PASS_STATUSES = {"pass", "passed", "ok", "kept", "accepted", "valid", "success"}


# ---- reading a run ---------------------------------------------------------------------------------------------
def _kind_of(rel_dir: Path, layout: Layout | None = None) -> str:
    """The table a published folder belongs to (`corpora.layout`): `data/lang=en` -> `data`."""
    return (layout or Layout(())).table_of(rel_dir.as_posix())


@dataclass
class RunOutputs:
    out_dir: Path
    manifest: dict
    stats: dict
    kinds: dict[str, list[Path]]  # output kind -> its Parquet shards, in manifest order, then any found on disk

    @property
    def pipeline(self) -> str:
        return self.manifest.get("pipeline") or self.out_dir.name

    def rows(self, kind: str) -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.kinds.get(kind, []))

    def schema(self, kind: str) -> pa.Schema | None:
        fields: dict[str, pa.Field] = {}
        for f in self.kinds.get(kind, []):
            for fl in pq.read_schema(f):
                fields.setdefault(fl.name, fl)
        return pa.schema(list(fields.values())) if fields else None

    def has(self, kind: str, *columns: str) -> bool:
        s = self.schema(kind)
        return s is not None and all(c in s.names for c in columns) and self.rows(kind) > 0

    def columns(self, kind: str, names: Iterable[str], max_rows: int | None = SAMPLE_ROWS
                ) -> tuple[dict[str, list], bool]:
        """({column: values}, sampled?): the columns of `kind` that exist (others absent from the dict), read
        without the rest of the row; at most `max_rows` rows, an even stride over every shard."""
        names = list(dict.fromkeys(names))
        files = self.kinds.get(kind, [])
        total = self.rows(kind)
        step = max(1, math.ceil(total / max_rows)) if max_rows else 1
        present = [n for n in names if any(n in pq.read_schema(f).names for f in files)]
        out: dict[str, list] = {n: [] for n in present}
        offset = 0
        for f in files:
            pf = pq.ParquetFile(f)
            have = [n for n in present if n in pf.schema_arrow.names]
            n_rows = pf.metadata.num_rows
            if not have:
                for n in present:
                    out[n].extend([None] * len(range((-offset) % step, n_rows, step)))
                offset += n_rows
                continue
            for batch in pf.iter_batches(columns=have, batch_size=65_536):
                idx = list(range((-offset) % step, batch.num_rows, step))
                offset += batch.num_rows
                if not idx:
                    continue
                taken = batch.take(pa.array(idx))
                for n in present:
                    out[n].extend(taken.column(taken.schema.get_field_index(n)).to_pylist() if n in have
                                  else [None] * len(idx))
        return out, step > 1


def find_kinds(out_dir: Path, manifest: dict, layout: Layout | None = None) -> dict[str, list[Path]]:
    """Output kind -> its shards: the manifest's outputs, each folder under the table the run's `layout` says
    (`corpora/layout.py`; none given: what the names imply)."""
    kinds: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    for name, shards in (manifest.get("outputs") or {}).items():
        files = [out_dir / s["path"] for s in shards if (out_dir / s["path"]).is_file()]
        kinds.setdefault(_kind_of(Path(name), layout), []).extend(files)
        seen.update(f.resolve() for f in files)
    if kinds or manifest.get("outputs"):
        return kinds  # the manifest says what was published (a stage's own state, e.g. dedup_index/, is not)
    for root, dirs, files in os.walk(out_dir):  # no manifest: every folder of Parquet files is an output
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            p = Path(root) / name
            if name.endswith(".parquet") and not name.startswith(".") and p.resolve() not in seen:
                kinds.setdefault(_kind_of(p.parent.relative_to(out_dir)), []).append(p)
    return kinds


def load_outputs(out_dir: str | Path, layout: Layout | None = None) -> RunOutputs:
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: not a folder (give a run's output folder)")
    manifest = read_json(out / "manifest.json") or {}
    stats = read_json(out / "stats.json") or {}
    kinds = find_kinds(out, manifest, layout)
    if not manifest and not stats and not kinds:
        raise FileNotFoundError(f"{out}: no manifest.json, stats.json or Parquet outputs: not a run's output folder")
    return RunOutputs(out, manifest, stats, kinds)


def config_value(cfg: dict, dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def walk(obj: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    """("a.b.c", value) for every key of nested dicts, parents before children."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            yield p, v
            yield from walk(v, p)


def is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def short(s: Any, n: int) -> str:
    s = str(s).replace("\n", " ")
    return s if len(s) <= n else s[:n - 1] + "…"


# ---- the page --------------------------------------------------------------------------------------------------
@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)  # HTML fragments in order
    figures: int = 0
    summary: list[str] = field(default_factory=list)  # markdown lines for the Prefect artifact

    def figure(self, svg: str, caption: str = "") -> None:
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure class="fig">{svg}{cap}</figure>')
        self.figures += 1

    def table(self, header: list[str], rows: list[list[Any]], caption: str = "") -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f'<td class="{"num" if isinstance(c, (int, float)) else ""}">'
                                        f"{html.escape(_cell(c))}</td>" for c in r) + "</tr>" for r in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def text(self, s: str) -> None:
        self.parts.append(f"<p>{html.escape(s)}</p>")

    def raw(self, s: str) -> None:
        self.parts.append(s)


def _cell(c: Any) -> str:
    if isinstance(c, bool) or c is None:
        return "" if c is None else str(c)
    if isinstance(c, int):
        return f"{c:,}"
    if isinstance(c, float):
        return f"{c:,.4g}" if abs(c) < 1e6 else f"{c:,.0f}"
    return str(c)


@dataclass(frozen=True)
class ReportSection:
    """What a report section declares: its `name` (in the log and in "<name> (not drawn)" when it raises), `build`
    (the run's outputs -> a Section, or None when the run has nothing for it) and `explains_layout` (a section that
    says what the run's main output is; when none of those is drawn the page gets the generic "Outputs at a glance")."""
    name: str
    build: Callable[[RunOutputs], Section | None]
    explains_layout: bool = False


@dataclass
class Report:
    html: str
    sections: list[Section]
    errors: list[str]
    seconds: float

    @property
    def figures(self) -> int:
        return sum(s.figures for s in self.sections)

    def markdown(self, path: Path) -> str:
        lines = ["# Run report", "", f"`{path}` ({self.figures} figures; open it in a browser)", ""]
        for s in self.sections:
            if s.summary:
                lines += [f"## {s.title}", *s.summary, ""]
        if self.errors:
            lines += ["## Not drawn", *[f"- {e}" for e in self.errors]]
        return "\n".join(lines)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}th,td{border:1px solid #ddd;
padding:.2rem .5rem;text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.2rem 0}figure.fig{display:inline-block;margin:.4rem;
vertical-align:top}figure.fig svg{max-width:100%;height:auto}figcaption{font-size:.8rem;color:#555;max-width:40rem}
.err{color:#a00}.meta{color:#555;font-size:.9rem}details{margin:.3rem 0}nav a{margin-right:.8rem}code{font-size:.85rem}"""


def render_html(title: str, meta: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections))
    body = "\n".join(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>\n' + "\n".join(s.parts) + "</section>"
                     for i, s in enumerate(sections))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p class="meta">{meta}</p>'
            f"<nav>{nav}</nav>\n{body}\n</body></html>\n")


def build_sections(run: RunOutputs, declared: Iterable[ReportSection], generic: ReportSection | None = None
                   ) -> tuple[list[Section], list[str]]:
    """Every declared section in order (a section that raises becomes "<name> (not drawn)" with the error, never
    costing the others); `generic` goes second when no drawn section explains the layout. (sections, errors)."""
    sections, errors, explained = [], [], False
    for decl in declared:
        try:
            sec = decl.build(run)
        except Exception as e:  # noqa: BLE001 - one section that cannot be drawn never costs the others
            errors.append(f"{decl.name}: {type(e).__name__}: {short(e, 300)}")
            sec = Section(f"{decl.name} (not drawn)")
            sec.raw(f'<p class="err">This section could not be drawn: {html.escape(errors[-1])}</p>')
        else:
            explained = explained or (sec is not None and decl.explains_layout)
        if sec is not None:
            sections.append(sec)
    if generic is not None and not explained:
        try:
            g = generic.build(run)
            if g:
                sections.insert(1, g)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{generic.name}: {type(e).__name__}: {short(e, 300)}")
    return sections, errors
