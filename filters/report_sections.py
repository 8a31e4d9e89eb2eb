"""Report sections of the curation steps (the filter stage and dedup, in `dolma` / `dedup` and in a generator's
post-processing): the funnel (documents and characters removed per step, from stats `filters` / `dedup` or
`postprocess.filters` / `postprocess.dedup`), removals per rule, rejected rows by reason (when there is no funnel),
score histograms of kept vs rejected rows with the configured threshold, duplicate-cluster sizes, PII matches.
Listed in page order in `flows/run_report.py:REPORT_SECTIONS`; the kit is `corpora/report_kit.py`."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa

from corpora.report_figures import KEPT, REJECTED, bar_figure, funnel_figure, grouped_bar_figure, histogram_figure
from corpora.report_kit import SAMPLE_ROWS, ReportSection, RunOutputs, Section, config_value, is_number

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


def step_list(filters: dict | None, dedup: dict | None) -> list[dict]:
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


def curation_steps(run: RunOutputs) -> list[dict]:
    """The run's own filter and dedup steps (stats `filters` / `dedup`)."""
    st = run.stats
    return step_list(st.get("filters"), st.get("dedup") if isinstance(st.get("dedup"), dict) else None)


def postprocess_steps(run: RunOutputs) -> list[dict]:
    """The steps run on generated rows (stats `postprocess.filters` / `postprocess.dedup`)."""
    pp = run.stats.get("postprocess") if isinstance(run.stats.get("postprocess"), dict) else {}
    return step_list(pp.get("filters"), pp.get("dedup"))


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


def rejected_section(run: RunOutputs) -> Section | None:
    """Rejected rows per reason, for a run without a curation funnel (the funnel shows removals per rule)."""
    if curation_steps(run) or not run.has("rejected", "reason"):
        return None
    vals, sampled = run.columns("rejected", ["reason"], max_rows=None if run.rows("rejected") <= 500_000
                                else SAMPLE_ROWS)
    counts = Counter(v or "none" for v in vals["reason"])
    s = Section("Rejected rows by reason")
    s.figure(bar_figure("rejected rows per reason" + (" (sample)" if sampled else ""), dict(counts)),
             "`flows inspect DIR --kind rejected --reason REASON` prints examples.")
    s.summary.append("- rejected: " + ", ".join(f"{k} {v:,}" for k, v in counts.most_common(8)))
    return s


def score_section(run: RunOutputs) -> Section | None:
    kinds = [k for k in ("data", "rejected") if run.has(k)]
    if not kinds:
        return None
    cols: list[str] = []
    for k in kinds:
        for f in run.schema(k):
            if is_number(f.type) and f.name not in NOT_SCORES and f.name not in cols and (
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


FUNNEL = ReportSection("funnel", lambda run: funnel_section("Filter funnel", curation_steps(run)),
                       explains_layout=True)
POSTPROCESS_FUNNEL = ReportSection("post-processing funnel", lambda run: funnel_section(
    "Post-processing funnel (generated rows)", postprocess_steps(run)))
REJECTED_BY_REASON = ReportSection("rejected", rejected_section)
SCORES = ReportSection("scores", score_section)
DEDUP = ReportSection("dedup", dedup_section)
PII = ReportSection("pii", pii_section)
