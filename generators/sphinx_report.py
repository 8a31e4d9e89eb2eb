"""The report section of per-language outputs with a pass/fail `status` per row (sphinx's `data/lang=<xx>/`): rows
per language and status, pass rate, span preservation (the `protected_spans` statuses), the failed checks per
language (sphinx joins them with "; " in `reason`). Listed in page order in `flows/run_report.py:REPORT_SECTIONS`;
the kit is `corpora/report_kit.py`."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa

from corpora.report_figures import bar_figure, grouped_bar_figure, status_colors
from corpora.report_kit import PASS_STATUSES, SAMPLE_ROWS, ReportSection, RunOutputs, Section, is_number
from filters.protected_spans import INTACT as SPAN_INTACT


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
        num_span = [f.name for f in schema if "span" in f.name and (is_number(f.type) or pa.types.is_boolean(f.type))]
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



PER_LANGUAGE = ReportSection("per language", language_outputs_section, explains_layout=True)
