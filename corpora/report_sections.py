"""Report sections about the output layout itself, for any run: every output kind with its rows, files and schema;
the languages of the rows; and, for a layout no pipeline's section explains, "Outputs at a glance" (rows per kind,
the counts of its small categorical columns, the numbers of stats.json)."""
from __future__ import annotations

import html
from collections import Counter

import pyarrow as pa

from corpora.report_figures import KEPT, REJECTED, bar_figure, grouped_bar_figure
from corpora.report_kit import ReportSection, RunOutputs, Section, walk


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


def generic_section(run: RunOutputs) -> Section | None:
    """An output layout no other section explains: rows per kind and the counts of its small categorical columns."""
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
    flat = [(k, v) for k, v in walk(run.stats) if isinstance(v, (int, float, str, bool))]
    if flat:
        scores = {k: float(v) for k, v in flat if type(v) is float and 0 <= v <= 1 and any(
            w in k.rsplit(".", 1)[-1].lower() for w in ("auc", "accuracy", "precision", "recall", "f1", "rate"))}
        if scores:
            s.figure(bar_figure("metrics", scores, "", fmt="{:.3f}", sort=False, top=30))
        s.table(["stats.json key", "value"], [[k, v] for k, v in flat[:80]],
                "stats.json" + (f" (first 80 of {len(flat)} values)" if len(flat) > 80 else ""))
    return s if s.parts else None


OUTPUTS = ReportSection("outputs", overview_section)
LANGUAGES = ReportSection("languages", languages_section)
GLANCE = ReportSection("generic", generic_section)
