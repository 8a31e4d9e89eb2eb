"""`report.html` and the `README.md` dataset card of a run, built from the run's outputs only (`manifest.json`,
`stats.json`, the Parquet shards), so `flows report DIR` rebuilds them for any past run.

The report is one self-contained HTML file (inline SVG figures drawn with matplotlib, no script, no network). Its
sections follow what the run wrote, not which pipeline it was:
- curation (stats `filters` / `dedup`): the funnel (docs and chars removed per step), removals per rule, score
  histograms of kept vs rejected rows (with the configured threshold), languages, duplicate-cluster sizes, PII;
- generation (stats `generation`): rounds, tokens per completion, finish reasons, failures with their errors,
  acceptance per round, the generator's own funnels and counts (e.g. impossible-distillation's pair funnel);
- diachronic (a `works` output): works per slice, year histogram, evidence sources, confidence;
- per-language outputs (`<kind>/lang=<xx>/part-*.parquet`, e.g. sphinx): pass rate per language, span preservation;
- always: every output kind with its rows, files and schema; an unknown layout gets counts per categorical column.
A section that cannot be drawn says why in the page and in the log; the rest of the report is still written.

Only the needed columns are read, never text; histograms use at most `SAMPLE_ROWS` rows (an even stride over the
shards), and the figure says when it is a sample.
"""
from __future__ import annotations

import html
import io
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import atomic_write_text, read_json

SAMPLE_ROWS = 20_000
REPORT = "report.html"
CARD = "README.md"
PASS_STATUSES = {"pass", "passed", "ok", "kept", "accepted", "valid", "success"}
# score column -> the config key of its threshold (a dashed line in its histogram when the key is in the config)
THRESHOLDS = {"language_score": "filters.langid.threshold", "quality_score": "filters.quality.threshold",
              "fineweb_line_punct_ratio": "filters.fineweb.line_punct_thr",
              "toxic_word_ratio": "filters.toxicity.max_word_ratio",
              "toxicity_score": "filters.toxicity.classifier_threshold",
              "gopher_words": "filters.gopher_quality.min_doc_words"}
SCORE_FIRST = ("quality_score", "language_score", "gopher_words", "fineweb_line_punct_ratio", "toxic_word_ratio",
               "toxicity_score", "c4_lines_removed", "paragraphs_removed")
NOT_SCORES = {"dup_cluster_size", "completion_tokens", "prompt_tokens", "attempts", "completion_index",
              "pii_emails", "pii_phones", "pii_ips", "pii_original_chars", "c4_original_chars", "paragraph_index",
              "author_birth", "author_death", "year_low", "year_high", "sentence_index"}
KEPT, REJECTED = "#3a7d44", "#c0392b"
OTHER_COLORS = ("#4c72b0", "#dd8452", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")  # no green/red


# ---- reading a run ---------------------------------------------------------------------------------------------
def _kind_of(rel_dir: Path) -> str:
    """`data/lang=en` -> `data`: hive-style partition folders belong to their kind."""
    return "/".join(p for p in rel_dir.parts if "=" not in p) or "."


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


def find_kinds(out_dir: Path, manifest: dict) -> dict[str, list[Path]]:
    kinds: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    for name, shards in (manifest.get("outputs") or {}).items():
        files = [out_dir / s["path"] for s in shards if (out_dir / s["path"]).is_file()]
        kinds.setdefault(_kind_of(Path(name)), []).extend(files)
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


def load_outputs(out_dir: str | Path) -> RunOutputs:
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: not a folder (give a run's output folder)")
    manifest = read_json(out / "manifest.json") or {}
    stats = read_json(out / "stats.json") or {}
    kinds = find_kinds(out, manifest)
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


# ---- figures ---------------------------------------------------------------------------------------------------
def _figure(width: float = 7.0, height: float = 3.2, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "flows-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _hbar(ax, labels: list[str], values: list[float], color: str = "#4c72b0", fmt: str = "{:,.0f}") -> None:
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=color)
    ax.set_yticks(y, [_short(lbl, 40) for lbl in labels])
    top = max(values) if values else 0
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, fmt.format(v), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15 or 1)
    ax.spines[["top", "right"]].set_visible(False)


def _short(s: Any, n: int) -> str:
    s = str(s).replace("\n", " ")
    return s if len(s) <= n else s[:n - 1] + "…"


def _thousands(ax, integer: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4, integer=integer))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if abs(v) >= 1e6 else
                                               f"{v / 1e3:g}k" if abs(v) >= 1e3 else f"{v:g}"))


def _integer_y(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))


def status_colors(statuses: Iterable[str]) -> dict[str, str]:
    """pass-like green, fail-like red, the rest from the default cycle."""
    out, i = {}, 0
    for st in statuses:
        low = st.lower()
        if low in PASS_STATUSES:
            out[st] = KEPT
        elif low in ("fail", "failed", "rejected", "error", "invalid"):
            out[st] = REJECTED
        else:
            out[st], i = OTHER_COLORS[i % len(OTHER_COLORS)], i + 1
    return out


def bar_figure(title: str, counts: dict[str, float], xlabel: str = "rows", top: int = 20, fmt: str = "{:,.0f}",
               sort: bool = True) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:top] if sort else list(counts.items())[:top]
    fig, ax = _figure(height=max(1.6, 0.28 * len(items) + 0.9))
    _hbar(ax, [k for k, _ in items], [v for _, v in items], fmt=fmt)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    _thousands(ax, integer=fmt == "{:,.0f}")
    return _svg(fig)


def funnel_figure(title: str, steps: list[dict]) -> str:
    """steps: {name, docs_in, removed, chars_removed?}: documents left after each step, removed ones beside."""
    names = [s["name"] for s in steps]
    kept = [s["docs_in"] - s["removed"] for s in steps]
    removed = [s["removed"] for s in steps]
    chars = [s.get("chars_removed") for s in steps]
    show_chars = any(c for c in chars)
    fig, axes = _figure(width=9.0 if show_chars else 7.0, height=max(2.0, 0.32 * len(steps) + 1.0),
                        ncols=2 if show_chars else 1)
    ax = axes[0] if show_chars else axes
    y = list(range(len(names)))[::-1]
    ax.barh(y, kept, color=KEPT, label="left after the step")
    ax.barh(y, removed, left=kept, color=REJECTED, label="removed by the step")
    ax.set_yticks(y, names)
    for yi, k, r in zip(y, kept, removed):
        ax.text(k + r, yi, f" -{r:,}" if r else "", va="center", fontsize=8)
    ax.set_xlabel("documents")
    _thousands(ax)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    if show_chars:
        _hbar(axes[1], names, [c or 0 for c in chars], color="#dd8452")
        _thousands(axes[1])
        axes[1].set_yticks([])
        axes[1].set_xlabel("characters removed")
    return _svg(fig)


def histogram_figure(title: str, series: dict[str, list[float]], threshold: float | None = None,
                     xlabel: str = "", sampled: bool = False, bins: int = 30, colors: dict[str, str] | None = None
                     ) -> str:
    import numpy as np

    vals = {k: np.asarray([v for v in vs if v is not None and not (isinstance(v, float) and math.isnan(v))],
                          dtype=float) for k, vs in series.items()}
    vals = {k: v for k, v in vals.items() if v.size}
    allv = np.concatenate(list(vals.values())) if vals else np.zeros(1)
    lo, hi = float(allv.min()), float(allv.max())
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    fig, ax = _figure(width=4.6, height=2.8)
    palette = colors or {}
    for i, (k, v) in enumerate(vals.items()):  # one step artist per series (ax.hist: a patch per bin, 5x slower)
        counts, _ = np.histogram(v, bins=edges)
        color = palette.get(k) or f"C{i}"
        ax.stairs(counts, edges, fill=True, alpha=0.45, color=color, label=f"{k} ({v.size:,})")
        ax.stairs(counts, edges, color=color, linewidth=0.8)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_title(title + (" (sample)" if sampled else ""), fontsize=10)
    ax.set_xlabel(xlabel or title)
    ax.set_ylabel("rows")
    _integer_y(ax)
    ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def grouped_bar_figure(title: str, groups: list[str], series: dict[str, list[float]], ylabel: str = "rows",
                       stacked: bool = False, colors: dict[str, str] | None = None) -> str:
    import numpy as np

    fig, ax = _figure(width=max(5.0, 0.5 * len(groups) * max(1, len(series)) ** 0.5 + 2), height=3.0)
    x = np.arange(len(groups))
    width = 0.8 if stacked else 0.8 / max(1, len(series))
    bottom = np.zeros(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        v = np.asarray(vals, dtype=float)
        color = (colors or {}).get(name)
        if stacked:
            ax.bar(x, v, width, bottom=bottom, label=name, color=color)
            bottom += v
        else:
            ax.bar(x - 0.4 + width * (i + 0.5), v, width, label=name, color=color)
    ax.set_xticks(x, [_short(g, 18) for g in groups], rotation=30 if len(groups) > 5 else 0, ha="right"
                  if len(groups) > 5 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    _integer_y(ax)
    ax.set_title(title, fontsize=10)
    if len(series) > 1 or stacked:
        ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


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


# ---- sections --------------------------------------------------------------------------------------------------
def overview_section(run: RunOutputs) -> Section:
    s = Section("Outputs")
    rows = []
    for kind, files in run.kinds.items():
        schema = run.schema(kind)
        rows.append([kind, run.rows(kind), len(files), sum(f.stat().st_size for f in files),
                     len(schema.names) if schema else 0])
    if rows:
        s.table(["output", "rows", "files", "bytes", "columns"], rows)
    else:
        s.text("No Parquet outputs (a model or another non-table output): stats.json is below.")
    inv = run.stats.get("invariant")
    if inv:
        s.text("Row invariant: " + ", ".join(f"{k} {v}" for k, v in inv.items()))
        s.summary.append(f"- invariant holds: {inv.get('holds')}")
    s.summary += [f"- `{k}`: {r:,} rows" for k, r, *_ in rows]
    for kind in run.kinds:
        schema = run.schema(kind)
        if schema is None:
            continue
        items = "".join(f"<tr><td><code>{html.escape(f.name)}</code></td><td>{html.escape(str(f.type))}</td></tr>"
                        for f in schema)
        s.raw(f"<details><summary>schema of <code>{html.escape(kind)}</code> ({len(schema)} columns)</summary>"
              f"<table><thead><tr><th>column</th><th>type</th></tr></thead><tbody>{items}</tbody></table></details>")
    return s


def _step_list(filters: dict | None, dedup: dict | None) -> list[dict]:
    steps = []
    for name, st in (filters or {}).items():
        if isinstance(st, dict) and "docs_in" in st:
            steps.append({"name": name, "docs_in": st["docs_in"], "removed": st.get("removed", 0),
                          "chars_removed": st.get("chars_removed"), "rules": st.get("rules") or {},
                          "seconds": st.get("seconds")})
    for name, st in (dedup or {}).items():
        if isinstance(st, dict) and "docs_in" in st:
            steps.append({"name": f"dedup:{name}", "docs_in": st["docs_in"], "removed": st.get("removed", 0),
                          "chars_removed": st.get("chars_removed"), "rules": {}, "seconds": st.get("seconds")})
    return steps


def funnel_section(title: str, steps: list[dict]) -> Section | None:
    if not steps:
        return None
    s = Section(title)
    s.figure(funnel_figure("documents through the steps", steps),
             "Documents left after each step (green) and removed by it (red); characters removed per step "
             "(for the filters: removed documents plus lines/spans cut from kept ones).")
    rules = {f"{st['name']}: {r}": n for st in steps for r, n in st["rules"].items() if n}
    if rules:
        s.figure(bar_figure("documents removed per rule", rules, "documents"),
                 "Which rule removed a document (the first rule it failed).")
    s.table(["step", "docs in", "removed", "left", "chars removed", "seconds"],
            [[st["name"], st["docs_in"], st["removed"], st["docs_in"] - st["removed"], st["chars_removed"],
              st["seconds"]] for st in steps])
    s.summary += [f"- {st['name']}: {st['docs_in']:,} in, {st['removed']:,} removed" for st in steps]
    return s


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def score_section(run: RunOutputs) -> Section | None:
    kinds = [k for k in ("data", "rejected") if run.has(k)]
    if not kinds:
        return None
    cols: list[str] = []
    for k in kinds:
        for f in run.schema(k):
            if _is_number(f.type) and f.name not in NOT_SCORES and f.name not in cols and (
                    f.name in SCORE_FIRST or pa.types.is_floating(f.type)
                    and f.name.endswith(("_score", "_ratio", "_frac", "_rougeL", "rougeL", "_similarity"))):
                cols.append(f.name)
    cols = sorted(cols, key=lambda c: (SCORE_FIRST.index(c) if c in SCORE_FIRST else len(SCORE_FIRST), c))[:10]
    if not cols:
        return None
    s = Section("Scores: kept vs rejected")
    data = {k: run.columns(k, cols) for k in kinds}
    cfg = run.manifest.get("config") or {}
    for c in cols:
        series = {("kept" if k == "data" else "rejected"): data[k][0].get(c, []) for k in kinds}
        if not any(v is not None for vs in series.values() for v in vs):
            continue
        thr = config_value(cfg, THRESHOLDS[c]) if c in THRESHOLDS else None
        s.figure(histogram_figure(c, series, thr if isinstance(thr, (int, float)) else None, c,
                                  any(data[k][1] for k in kinds), colors={"kept": KEPT, "rejected": REJECTED}))
    s.text("Rejected rows carry the scores computed up to the step that removed them (later scores are empty).")
    return s if s.figures else None


def languages_section(run: RunOutputs) -> Section | None:
    col = next((c for c in ("language", "lang") if any(run.has(k, c) for k in run.kinds)), None)
    if col is None:
        return None
    kinds = [k for k in run.kinds if run.has(k, col)][:4]
    counts = {k: Counter(v or "none" for v in run.columns(k, [col])[0][col]) for k in kinds}
    langs = [lang for lang, _ in sum(counts.values(), Counter()).most_common(15)]
    s = Section("Languages")
    s.figure(grouped_bar_figure(f"{col} per output", langs, {k: [counts[k][x] for x in langs] for k in kinds},
                                colors={"data": KEPT, "rejected": REJECTED}),
             "The 15 most frequent languages (sampled when an output is large).")
    top = counts.get("data") or next(iter(counts.values()))
    s.summary.append("- languages: " + ", ".join(f"{k} {v:,}" for k, v in top.most_common(5)))
    return s


def dedup_section(run: RunOutputs) -> Section | None:
    kinds = [k for k in ("data", "rejected") if run.has(k, "dup_cluster_size")]
    if not kinds:
        return None
    sizes = [v for k in kinds for v in run.columns(k, ["dup_cluster_size"])[0]["dup_cluster_size"] if v]
    if not sizes:
        return None
    s = Section("Duplicate clusters")
    c = Counter(sizes)
    s.figure(grouped_bar_figure("rows in a cluster of size n", [str(n) for n in sorted(c)],
                                {"rows": [c[n] for n in sorted(c)]}),
             "Rows of kept and rejected outputs by the size of their MinHash duplicate cluster (1 = unique).")
    s.summary.append(f"- largest duplicate cluster: {max(sizes)}")
    return s


def pii_section(run: RunOutputs) -> Section | None:
    cols = ["pii_emails", "pii_phones", "pii_ips"]
    kinds = [k for k in ("data", "rejected") if any(run.has(k, c) for c in cols)]
    if not kinds:
        return None
    series = {}
    for k in kinds:
        vals, _ = run.columns(k, cols, max_rows=None)  # exact totals: three small integer columns
        series["kept" if k == "data" else "rejected"] = [sum(v or 0 for v in vals.get(c, [])) for c in cols]
    s = Section("PII")
    s.figure(grouped_bar_figure("PII matches (masked)", [c[4:] for c in cols], series, "matches",
                                colors={"kept": KEPT, "rejected": REJECTED}),
             "Emails, phone numbers and IP addresses found (and masked in the text).")
    s.summary.append("- PII matches in kept rows: " + ", ".join(
        f"{c[4:]} {n:,}" for c, n in zip(cols, series.get("kept", [0, 0, 0]))))
    return s


def generation_section(run: RunOutputs) -> Section | None:
    gen = run.stats.get("generation")
    if not isinstance(gen, dict) or not gen.get("rounds"):
        return None
    s = Section("Generation")
    rounds = gen["rounds"]
    s.table(["round", "backend", "model", "requests", "cached", "generated", "failed", "completion tokens",
             "tok/s", "seconds"],
            [[n, r.get("backend"), Path(str(r.get("model") or "")).name, r.get("requests"), r.get("cached"),
              r.get("generated"), r.get("failed"), r.get("completion_tokens"), r.get("tokens_per_s"),
              r.get("wall_s")] for n, r in rounds.items()])
    names = list(rounds)
    s.figure(grouped_bar_figure("requests per round", names,
                                {"generated": [rounds[n].get("generated", 0) for n in names],
                                 "cached": [rounds[n].get("cached", 0) for n in names],
                                 "failed": [rounds[n].get("failed", 0) for n in names]}, "requests", stacked=True,
                                colors={"generated": KEPT, "cached": "#8fb3d9", "failed": REJECTED}),
             "Per round: requests answered now, answered from the cache of an earlier run, failed.")
    s.summary.append(f"- {gen.get('requests', 0):,} requests, {gen.get('failed', 0):,} failed, "
                     f"{gen.get('completion_tokens', 0):,} completion tokens, models {gen.get('models')}")
    tok_kinds = [k for k in run.kinds if run.has(k, "completion_tokens")]
    if tok_kinds:
        series, sampled = {}, False
        for k in tok_kinds[:4]:
            vals, smp = run.columns(k, ["completion_tokens"])
            series[k], sampled = vals["completion_tokens"], sampled or smp
        if any(v is not None for vs in series.values() for v in vs):
            s.figure(histogram_figure("tokens per completion", series, None, "completion tokens", sampled,
                                      colors={"data": KEPT, "rejected": REJECTED}))
    fin_kinds = [k for k in run.kinds if run.has(k, "finish_reason")]
    if fin_kinds:
        counts = {k: Counter(v or "none" for v in run.columns(k, ["finish_reason"])[0]["finish_reason"])
                  for k in fin_kinds[:4]}
        reasons = sorted(set().union(*counts.values()))
        s.figure(grouped_bar_figure("finish reasons", reasons, {k: [counts[k][r] for r in reasons] for k in counts},
                                    colors={"data": KEPT, "rejected": REJECTED}),
                 "Why the model stopped (`length`: it hit max_tokens).")
    if run.has("rejected", "error"):
        vals, _ = run.columns("rejected", ["id", "error", "reason"], max_rows=None if run.rows("rejected") <= 200_000
                              else SAMPLE_ROWS)
        errs: dict[str, list] = {}
        for i, e, r in zip(vals.get("id", []), vals["error"], vals.get("reason", [None] * len(vals["error"]))):
            if e:
                errs.setdefault(_short(e, 160), [0, i, r])[0] += 1
        if errs:
            top = sorted(errs.items(), key=lambda kv: -kv[1][0])[:10]
            s.table(["error", "rows", "reason", "example id"], [[e, n, r, i] for e, (n, i, r) in top],
                    "Failures with their errors (most frequent first)")
            s.summary.append(f"- failures: {sum(v[0] for v in errs.values()):,} rows, {len(errs)} distinct errors")
    for kind in run.kinds:  # acceptance over rounds: an output with a round and a status per row
        if run.has(kind, "round", "status"):
            vals, _ = run.columns(kind, ["round", "status"], max_rows=None if run.rows(kind) <= 200_000
                                  else SAMPLE_ROWS)
            order = [r for r in names if r in set(vals["round"])] + sorted(
                set(map(str, vals["round"])) - set(names))
            by: dict[str, Counter] = {}
            for rd, st in zip(vals["round"], vals["status"]):
                by.setdefault(str(st), Counter())[str(rd)] += 1
            s.figure(grouped_bar_figure(f"{kind}: status per round", order,
                                        {st: [c[r] for r in order] for st, c in sorted(by.items())}, stacked=True,
                                        colors=status_colors(by)),
                     f"Acceptance over rounds: the status of every row of `{kind}/` per round.")
    return s


def _walk(obj: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            yield p, v
            yield from _walk(v, p)


def generator_stats_section(run: RunOutputs) -> Section | None:
    """The generator's own stats (under its pipeline name): funnels, histograms and counters found in them."""
    own = run.stats.get(run.pipeline)
    pp = run.stats.get("postprocess") or {}
    if not isinstance(own, dict) and not pp:
        return None
    s = Section(f"{run.pipeline}: generator stats")
    drawn = 0
    for path, v in _walk(own or {}):
        if drawn >= 8:
            break
        key = path.rsplit(".", 1)[-1]
        if key.endswith("funnel") and isinstance(v, list) and v and all(isinstance(x, dict) and "in" in x for x in v):
            steps = [{"name": x.get("step") or x.get("name") or str(i), "docs_in": x["in"],
                      "removed": x["in"] - x.get("out", x["in"])} for i, x in enumerate(v)]
            s.figure(funnel_figure(path, steps), f"`{path}`: rows entering each step and removed by it.")
            s.summary += [f"- {path}: " + " -> ".join(f"{st['name']} {st['docs_in']:,}" for st in steps)]
            drawn += 1
        elif key.endswith("_hist") and isinstance(v, dict) and "edges" in v and "counts" in v:
            e = v["edges"]
            labels = [f"{e[i]:g}–{e[i + 1]:g}" for i in range(len(v["counts"]))]
            s.figure(grouped_bar_figure(path, labels, {"rows": v["counts"]}), f"`{path}` (from stats.json).")
            drawn += 1
        elif isinstance(v, dict) and len(v) >= 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                          for x in v.values()) and sum(v.values()) and \
                key in ("decided_by", "status", "removed", "parse_failures", "cleanup_removed", "by_reason"):
            s.figure(bar_figure(path, v), f"`{path}` (from stats.json).")
            drawn += 1
    reasons = pp.get("removed") if isinstance(pp, dict) else None
    if reasons:
        s.text("Removed by post-processing: " + ", ".join(f"{k} {n:,}" for k, n in reasons.items()))
    return s if s.parts else None


def rejected_section(run: RunOutputs) -> Section | None:
    if not run.has("rejected", "reason"):
        return None
    vals, sampled = run.columns("rejected", ["reason"], max_rows=None if run.rows("rejected") <= 500_000
                                else SAMPLE_ROWS)
    counts = Counter(v or "none" for v in vals["reason"])
    s = Section("Rejected rows by reason")
    s.figure(bar_figure("rejected rows per reason" + (" (sample)" if sampled else ""), dict(counts)),
             "`flows inspect DIR --kind rejected --reason REASON` prints examples.")
    s.summary.append("- rejected: " + ", ".join(f"{k} {v:,}" for k, v in counts.most_common(8)))
    return s


def diachronic_section(run: RunOutputs) -> Section | None:
    if not run.has("works", "year"):
        return None
    s = Section("Works and time slices")
    vals, sampled = run.columns("works", ["slice", "year", "confidence", "date_source", "undated_reason",
                                          "evidence"], max_rows=None if run.rows("works") <= 200_000 else SAMPLE_ROWS)
    slices = Counter(v or "undated" for v in vals.get("slice", []))
    s.figure(bar_figure("works per slice", dict(slices), "works"), "Works per time slice (undated: no date).")
    years = [y for y in vals.get("year", []) if y is not None]
    if years:
        s.figure(histogram_figure("year", {"works": years}, None, "year", sampled, bins=min(40, max(5, len(set(years))))))
    if vals.get("date_source"):
        s.figure(bar_figure("deciding evidence", dict(Counter(v or "none" for v in vals["date_source"])), "works"),
                 "The evidence that decided each work's date (`date_source`).")
    ev = Counter()
    for e in vals.get("evidence", []):
        try:
            items = json.loads(e) if e else []
        except (TypeError, ValueError):
            continue
        if isinstance(items, dict):
            items = items.get("evidence") or items.get("items") or []
        for it in items if isinstance(items, list) else []:
            if isinstance(it, dict):
                ev[str(it.get("kind") or it.get("source") or "unknown")] += 1
    if ev:
        s.figure(bar_figure("evidence sources (all evidence)", dict(ev), "pieces of evidence"),
                 "Every piece of evidence found, by kind (a work can have several).")
    conf = [c for c in vals.get("confidence", []) if c is not None]
    if conf:
        s.figure(histogram_figure("confidence", {"works": conf}, None, "confidence", sampled, bins=20))
    undated = Counter(v for v in vals.get("undated_reason", []) if v)
    if undated:
        s.table(["undated reason", "works"], [[k, v] for k, v in undated.most_common(10)])
    sl = (run.stats.get("slicing") or {}).get("slices") or {}
    if sl:
        names = list(sl)
        splits = sorted({sp for v in sl.values() for sp in (v.get("splits") or {})})
        s.figure(grouped_bar_figure("words per slice and split", names,
                                    {sp: [((sl[n].get("splits") or {}).get(sp) or {}).get("words", 0) for n in names]
                                     for sp in splits}, "words"))
    s.summary.append(f"- works: {sum(slices.values()):,}; per slice " + ", ".join(f"{k} {v}" for k, v in
                                                                                sorted(slices.items())))
    return s


SPAN_INTACT = ("restored", "verbatim")


def language_outputs_section(run: RunOutputs) -> Section | None:
    """Outputs with a `lang` and a `status` column (sphinx's `data/lang=<xx>/`): rows per language and status, pass
    rate, span preservation (the `protected_spans` statuses: restored / verbatim = intact; `kept` = never
    translated, not counted), the failure reasons per language."""
    kinds = [k for k in run.kinds if run.has(k, "lang") and run.has(k, "status")]
    if not kinds:
        return None
    s = Section("Per language")
    for kind in kinds:
        schema = run.schema(kind)
        num_span = [f.name for f in schema if "span" in f.name and (_is_number(f.type) or pa.types.is_boolean(f.type))]
        span_list = "protected_spans" if "protected_spans" in schema.names else None
        vals, sampled = run.columns(kind, ["lang", "status", "reason", *num_span, *([span_list] if span_list else [])],
                                    max_rows=None if run.rows(kind) <= 200_000 else SAMPLE_ROWS)
        langs = sorted(set(map(str, vals["lang"])))
        by_status: dict[str, Counter] = {}
        for lang, st in zip(vals["lang"], vals["status"]):
            by_status.setdefault(str(st), Counter())[str(lang)] += 1
        s.figure(grouped_bar_figure(f"{kind}: status per language", langs,
                                    {st: [c[lg] for lg in langs] for st, c in sorted(by_status.items())},
                                    stacked=True, colors=status_colors(by_status)),
                 f"Rows of `{kind}/` per language and status" + (" (sample)." if sampled else "."))
        tot = Counter(str(x) for x in vals["lang"])
        passing = [st for st in by_status if st.lower() in PASS_STATUSES]
        rate = {lg: sum(by_status[st][lg] for st in passing) / tot[lg] for lg in langs} if passing else {}
        if passing:
            s.figure(bar_figure(f"{kind}: pass rate per language", rate, "share of rows", top=50, fmt="{:.1%}",
                                sort=False), f"Share of rows with status {', '.join(passing)}.")
            s.summary.append(f"- {kind} pass rate: " + ", ".join(f"{lg} {rate[lg]:.1%}" for lg in langs))
        spans: dict[str, Counter] = {}
        for lg, items in zip(vals["lang"], vals.get(span_list) or []):
            for sp in items or []:
                st = sp.get("status") if isinstance(sp, dict) else None
                if st and st != "kept":
                    spans.setdefault(str(lg), Counter())[st] += 1
        preserved = {lg: sum(c[x] for x in SPAN_INTACT) / sum(c.values()) for lg, c in spans.items() if c}
        if preserved:
            s.figure(bar_figure(f"{kind}: span preservation per language", {lg: preserved[lg] for lg in langs
                                                                             if lg in preserved},
                                "share of protected spans intact", top=50, fmt="{:.1%}", sort=False),
                     "Protected spans (code, numbers, names, ...) that came back intact (restored or verbatim) per "
                     "language; spans kept in English are not counted.")
        for col in num_span[:3]:
            by_lang: dict[str, list[float]] = {}
            for lg, v in zip(vals["lang"], vals[col]):
                if v is not None:
                    by_lang.setdefault(str(lg), []).append(float(v))
            if by_lang:
                means = {lg: sum(v) / len(v) for lg, v in sorted(by_lang.items())}
                s.figure(bar_figure(f"{kind}: mean {col} per language", means, col, top=50, fmt="{:.3g}",
                                    sort=False), f"Span preservation: mean of `{col}` per language.")
        s.table(["language", "rows", "pass rate", "spans", "spans intact"],
                [[lg, tot[lg], round(rate[lg], 4) if lg in rate else None, sum(spans.get(lg, Counter()).values()),
                  round(preserved[lg], 4) if lg in preserved else None] for lg in langs])
        reasons = Counter(f"{lg}: {part.split('=')[0].split(':')[0].strip()}"
                          for lg, r in zip(vals["lang"], vals.get("reason") or []) if r
                          for part in str(r).split("; ") if part.strip())
        if reasons:
            s.table(["language: failed check", "rows"], [[k, v] for k, v in reasons.most_common(15)],
                    "Most frequent failed checks")
    return s


def generic_section(run: RunOutputs) -> Section | None:
    """An output layout no section above knows: rows per kind and the counts of its small categorical columns."""
    s = Section("Outputs at a glance")
    rows = {k: run.rows(k) for k in run.kinds}
    if rows:
        s.figure(bar_figure("rows per output", rows))
    for kind in list(run.kinds)[:6]:
        schema = run.schema(kind)
        if schema is None or not rows[kind]:
            continue
        cats = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                                           or pa.types.is_boolean(f.type)) and f.name not in ("id", "text")]
        vals, _ = run.columns(kind, cats[:20], max_rows=5_000)
        for c in cats[:20]:
            cnt = Counter(str(v) for v in vals.get(c, []))
            if 1 < len(cnt) <= 20 and s.figures < 8:
                s.figure(bar_figure(f"{kind}: {c}", dict(cnt)))
    flat = [(k, v) for k, v in _walk(run.stats) if isinstance(v, (int, float, str, bool))]
    if flat:
        scores = {k: float(v) for k, v in flat if type(v) is float and 0 <= v <= 1 and any(
            w in k.rsplit(".", 1)[-1].lower() for w in ("auc", "accuracy", "precision", "recall", "f1", "rate"))}
        if scores:
            s.figure(bar_figure("metrics", scores, "", fmt="{:.3f}", sort=False, top=30))
        s.table(["stats.json key", "value"], [[k, v] for k, v in flat[:80]],
                "stats.json" + (f" (first 80 of {len(flat)} values)" if len(flat) > 80 else ""))
    return s if s.parts else None


def build_report(out_dir: str | Path) -> Report:
    t0 = time.perf_counter()
    run = load_outputs(out_dir)
    m, st = run.manifest, run.stats
    builders: list[tuple[str, Callable[[], Section | None]]] = [("outputs", lambda: overview_section(run))]
    curation = _step_list(st.get("filters"), st.get("dedup") if isinstance(st.get("dedup"), dict) else None)
    pp = st.get("postprocess") if isinstance(st.get("postprocess"), dict) else {}
    post = _step_list(pp.get("filters"), pp.get("dedup"))
    builders += [("funnel", lambda: funnel_section("Filter funnel", curation)),
                 ("post-processing funnel", lambda: funnel_section("Post-processing funnel (generated rows)", post)),
                 ("generation", lambda: generation_section(run)),
                 ("generator stats", lambda: generator_stats_section(run)),
                 ("rejected", lambda: rejected_section(run) if not curation else None),
                 ("scores", lambda: score_section(run)),
                 ("languages", lambda: languages_section(run)),
                 ("dedup", lambda: dedup_section(run)),
                 ("pii", lambda: pii_section(run)),
                 ("diachronic", lambda: diachronic_section(run)),
                 ("per language", lambda: language_outputs_section(run))]
    sections, errors = [], []
    for name, build in builders:
        try:
            sec = build()
        except Exception as e:  # noqa: BLE001 - one section that cannot be drawn never costs the others
            errors.append(f"{name}: {type(e).__name__}: {_short(e, 300)}")
            sec = Section(f"{name} (not drawn)")
            sec.raw(f'<p class="err">This section could not be drawn: {html.escape(errors[-1])}</p>')
        if sec is not None:
            sections.append(sec)
    known = {"Filter funnel", "Generation", "Works and time slices", "Per language"}
    if not any(s.title in known for s in sections):
        try:
            g = generic_section(run)
            if g:
                sections.insert(1, g)
        except Exception as e:  # noqa: BLE001
            errors.append(f"generic: {type(e).__name__}: {_short(e, 300)}")
    meta = " · ".join(html.escape(str(x)) for x in (
        f"pipeline {run.pipeline}", f"status {m.get('status', 'unknown')}", f"started {m.get('started', '?')}",
        f"finished {m.get('finished', '?')}", f"config {m.get('config_hash', '?')}",
        f"flows-data-engine {m.get('package_version', '?')}", str(run.out_dir)))
    page = render_html(f"{run.pipeline} run report", meta, sections)
    return Report(page, sections, errors, time.perf_counter() - t0)


# ---- writing them ----------------------------------------------------------------------------------------------
def card_inputs(run: RunOutputs) -> dict:
    """What the dataset card needs from disk: per kind its files (relative), rows, schema; the languages."""
    kinds = {}
    for kind, files in run.kinds.items():
        schema = run.schema(kind)
        kinds[kind] = {"files": [f.relative_to(run.out_dir).as_posix() for f in files], "rows": run.rows(kind),
                       "bytes": sum(f.stat().st_size for f in files),
                       "schema": [(f.name, str(f.type)) for f in schema] if schema else []}
    langs: Counter = Counter()
    main = "data" if "data" in run.kinds else next(iter(run.kinds), None)
    if main:
        for col in ("language", "lang"):
            if run.has(main, col):
                langs.update(v for v in run.columns(main, [col], max_rows=5_000)[0][col] if v)
                break
    return {"kinds": kinds, "languages": [lang for lang, _ in langs.most_common(20)]}


def write_dataset_card(out_dir: str | Path) -> Path:
    from corpora.dataset_card import render_card

    run = load_outputs(out_dir)
    ci = card_inputs(run)
    path = run.out_dir / CARD
    atomic_write_text(path, render_card(run.manifest, run.stats, ci["kinds"], languages=ci["languages"]))
    return path


def write_report(out_dir: str | Path) -> tuple[Path, Report]:
    report = build_report(out_dir)
    path = Path(out_dir) / REPORT
    atomic_write_text(path, report.html)
    return path, report


def write_run_report(out_dir: str | Path, pipeline: str | None = None, card: bool = True) -> dict:
    """Write report.html and README.md into a finished run's folder and publish the report's summary as a Prefect
    artifact. Never raises: what could not be written is logged and returned under `errors`."""
    from flows.reporting import publish_artifact, run_logger

    log = run_logger()
    result: dict[str, Any] = {"errors": []}
    try:
        t0 = time.perf_counter()
        path, report = write_report(out_dir)
        result.update(report=str(path), figures=report.figures, seconds=round(time.perf_counter() - t0, 3))
        result["errors"] += report.errors
        for e in report.errors:
            log.warning("report.html: section not drawn: %s", e)
        log.info("report: %s (%d figures, %.2f s)", path, report.figures, result["seconds"])
        publish_artifact(f"{(pipeline or 'run').lower()}-report", report.markdown(path))
    except Exception as e:  # noqa: BLE001 - a report is never a reason to fail a finished run
        result["errors"].append(f"report.html: {type(e).__name__}: {e}")
        log.warning("report.html not written: %s: %s", type(e).__name__, e)
    try:
        if card:
            result["card"] = str(write_dataset_card(out_dir))
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"README.md: {type(e).__name__}: {e}")
        log.warning("dataset card README.md not written: %s: %s", type(e).__name__, e)
    return result


# ---- sample rows (flows inspect) -------------------------------------------------------------------------------
WIDE_COLUMNS = {"text", "metadata", "prompt", "completion_unfiltered", "sampling_params", "evidence", "raw",
                "candidates", "pairwise_rougeL", "x_l", "y_orig", "completion", "token_logprobs"}


def reason_names(reason: Any) -> list[str]:
    """"spans:<s1>:missing; lid=en" -> ["spans", "lid"] (several failed checks in one reason, as sphinx writes
    them); a plain reason is its own name."""
    if reason is None:
        return []
    return [p.split("=")[0].split(":")[0].strip() for p in str(reason).split("; ") if p.strip()]


def sample_rows(run: RunOutputs, kind: str, *, reason: str | None = None, limit: int = 5,
                columns: list[str] | None = None) -> tuple[list[dict], Counter]:
    """Up to `limit` rows of `kind` (first ones in shard order) whose `reason` or `reason_detail` is `reason`
    (also `reason:detail`), and the reasons seen while looking. Reads row group by row group: the reason columns
    first, the whole row only for a row group with a match."""
    seen: Counter = Counter()
    out: list[dict] = []
    for f in run.kinds.get(kind, []):
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        want = [c for c in (columns or names) if c in names]
        for c in ("id", "reason", "reason_detail"):
            if c in names and c not in want:
                want.insert(0, c)
        rcols = [c for c in ("reason", "reason_detail") if c in names]
        for g in range(pf.num_row_groups):
            if reason is not None:
                if not rcols:
                    return [], seen
                rt = pf.read_row_group(g, columns=rcols).to_pydict()
                rs = rt.get("reason") or [None] * pf.metadata.row_group(g).num_rows
                ds = rt.get("reason_detail") or [None] * len(rs)
                checks = [reason_names(r) for r in rs]
                for names in checks:
                    seen.update(names)
                idx = [i for i, (r, d, names) in enumerate(zip(rs, ds, checks))
                       if reason in (r, d, f"{r}:{d}") or reason in names]
                if not idx:
                    continue
                table = pf.read_row_group(g, columns=want).take(pa.array(idx[:limit - len(out)]))
            else:
                table = pf.read_row_group(g, columns=want).slice(0, limit - len(out))
            out += table.to_pylist()
            if len(out) >= limit:
                return out, seen
    return out, seen


def write_model_report(out: str | Path, pipeline: str, config: Any, report: dict, started: str) -> None:
    """For a pipeline whose output is a model folder, not the run scaffold's tables (quality-train,
    diachronic-train): stats.json (the training report), manifest.json (config, inputs with sha256) and report.html
    beside the model; no dataset card (a model folder is not a dataset). Never raises on the report."""
    from corpora.atomic import atomic_write_json
    from corpora.hashing import sha256_file
    from corpora.manifest import write_manifest
    from corpora.readers import expand_inputs
    from flows.config import config_hash

    out = Path(out)
    atomic_write_json(out / "stats.json", report)
    inputs = [{"path": str(p), "sha256": sha256_file(p)} for p in expand_inputs(config.inputs)] if config.inputs else []
    write_manifest(out, pipeline=pipeline, config=config.model_dump(mode="json"), config_hash=config_hash(config),
                   outputs={}, started=started, status="complete", inputs=inputs)
    write_run_report(out, pipeline, card=False)
