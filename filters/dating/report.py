"""The report section of the diachronic pipeline's `works` output (one row per dated work): works per time slice,
the year histogram, the deciding evidence (`date_source`), every piece of evidence by kind, the confidence, the
undated reasons, and words per slice and split (stats `slicing.slices`). Listed in page order in
`flows/run_report.py:REPORT_SECTIONS`; the kit is `corpora/report_kit.py`."""
from __future__ import annotations

import json
from collections import Counter

from corpora.report_figures import bar_figure, grouped_bar_figure, histogram_figure
from corpora.report_kit import SAMPLE_ROWS, ReportSection, RunOutputs, Section


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
        s.figure(histogram_figure("year", {"works": years}, None, "year", sampled,
                                  bins=min(40, max(5, len(set(years))))))
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



WORKS = ReportSection("diachronic", diachronic_section, explains_layout=True)
