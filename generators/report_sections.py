"""Report sections of the generator mechanism (stats `generation`, written by every generator): the rounds with
their backend, model, requests, cache hits and failures; tokens per completion; finish reasons; failures with their
errors; acceptance per round (an output with `round` and `status` per row); and the generator's own stats under its
pipeline name (funnels, `*_hist` histograms, counters such as `decided_by`). Listed in page order in
`flows/run_report.py:REPORT_SECTIONS`; the kit is `corpora/report_kit.py`."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from corpora.report_figures import (KEPT, REJECTED, bar_figure, funnel_figure, grouped_bar_figure, histogram_figure,
                                    status_colors)
from corpora.report_kit import SAMPLE_ROWS, ReportSection, RunOutputs, Section, short, walk


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
                errs.setdefault(short(e, 160), [0, i, r])[0] += 1
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


def generator_stats_section(run: RunOutputs) -> Section | None:
    """The generator's own stats (under its pipeline name): funnels, histograms and counters found in them."""
    own = run.stats.get(run.pipeline)
    pp = run.stats.get("postprocess") or {}
    if not isinstance(own, dict) and not pp:
        return None
    s = Section(f"{run.pipeline}: generator stats")
    drawn = 0
    for path, v in walk(own or {}):
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
        elif key.endswith("per_kind") and isinstance(v, dict) and v and all(
                isinstance(c, dict) and c and all(isinstance(x, int) for x in c.values()) for c in v.values()):
            _per_kind(s, path, v)  # counts per prompt kind (overgenerate: completions, refusals, unsafe, ...)
            drawn += 1
        elif isinstance(v, dict) and len(v) >= 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                          for x in v.values()) and sum(v.values()) and \
                key in ("decided_by", "status", "removed", "parse_failures", "cleanup_removed", "by_reason"):
            s.figure(bar_figure(path, v), f"`{path}` (from stats.json).")
            drawn += 1
    if run.has("preferences", "prompt", "chosen", "rejected"):  # DPO pairs: why, and a few examples
        vals, _ = run.columns("preferences", ["prompt", "chosen", "rejected", "why"], max_rows=SAMPLE_ROWS)
        if "why" in vals:
            s.figure(bar_figure("preferences: pairs by why", dict(Counter(map(str, vals["why"])))),
                     "Preference pairs (`preferences/`: prompt, chosen, rejected) by the rule that made them.")
        why = vals.get("why") or [None] * len(vals["prompt"])
        s.table(["why", "prompt", "chosen", "rejected"],
                [[w, short(p, 60), short(c, 90), short(r, 90)] for p, c, r, w in
                 list(zip(vals["prompt"], vals["chosen"], vals["rejected"], why))[:5]],
                f"A few of the {run.rows('preferences'):,} preference pairs")
    reasons = pp.get("removed") if isinstance(pp, dict) else None
    if reasons:
        s.text("Removed by post-processing: " + ", ".join(f"{k} {n:,}" for k, n in reasons.items()))
    return s if s.parts else None


def _per_kind(s: Section, path: str, v: dict[str, dict[str, int]]) -> None:
    kinds = list(v)
    counters = list(dict.fromkeys(c for d in v.values() for c in d))
    s.figure(grouped_bar_figure(path, counters, {k: [v[k].get(c, 0) for c in counters] for k in kinds}),
             f"`{path}`: counts per kind (from stats.json).")
    s.table(["kind"] + counters, [[k] + [v[k].get(c, 0) for c in counters] for k in kinds])


GENERATION = ReportSection("generation", generation_section, explains_layout=True)
GENERATOR_STATS = ReportSection("generator stats", generator_stats_section)
