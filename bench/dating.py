"""Date-attribution benchmark: our dates against cited first-edition years of the shared Gutenberg books, next to
the 70B-LLM years of the diachronic paper (gb_authors_wikidata_llm_dates.jsonl) on the same works.

    python bench/dating.py [--texts DIR] [--authors TABLE] [--style-model DIR] [--reference CSV] [--per-work]

Reports exact-year, within-5, MAE and slice agreement for: the full pipeline, ablations (text evidence only;
text + author life; + style; without the same-author-lists pass), the LLM years alone, and the pipeline with the
LLM answer added as its optional `llm` evidence (the paper's answers stand in for the generation layer). Apart
from that last row nothing reads the LLM years. Without --style-model a model is trained on ../shared slices into
a temporary folder (~50 s).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filters.dating.authors import AuthorIndex, load_authors_table  # noqa: E402
from filters.dating.bibliography import listing_evidence  # noqa: E402
from filters.dating.periods import DEFAULT_SLICES, slice_of  # noqa: E402
from filters.dating.style import StyleModel, train_style_model  # noqa: E402
from filters.dating.works import date_work, work_from_text  # noqa: E402
from generators.work_dates import llm_evidence  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "gutenberg"
FICTION = {"novel", "stories", "children"}


def load_reference(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["id"]: {**r, "year": int(r["year"])} for r in csv.DictReader(fh)}


def load_llm_years(path: Path) -> dict[str, int]:
    """The paper's LLM answer per Gutenberg id (first 4-digit year of the raw answer; '1905-1906' -> 1905)."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            for gid, ans in (obj.get("work_dates") or {}).items():
                m = re.search(r"\d{4}", str(ans))
                if m:
                    out[str(gid)] = int(m.group())
    return out


def metrics(pairs: list[tuple[int | None, int]]) -> dict[str, float]:
    """pairs of (predicted or None, reference). Undated predictions count as wrong and are left out of MAE."""
    n = len(pairs)
    dated = [(p, r) for p, r in pairs if p is not None]
    if not n:
        return {}
    exact = sum(p == r for p, r in dated) / n
    within5 = sum(abs(p - r) <= 5 for p, r in dated) / n
    mae = sum(abs(p - r) for p, r in dated) / len(dated) if dated else float("nan")
    slice_ok = sum(slice_of(p) == slice_of(r) for p, r in dated) / n
    return {"n": n, "dated": len(dated), "exact": exact, "within5": within5, "mae": mae, "slice": slice_ok}


def fmt_row(name: str, m: dict) -> str:
    return (f"| {name:<34} | {m['n']:>3} | {m['dated']:>5} | {m['exact']:>6.1%} | {m['within5']:>7.1%} "
            f"| {m['mae']:>5.2f} | {m['slice']:>6.1%} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=Path, default=SHARED / "texts")
    ap.add_argument("--authors", type=Path, default=SHARED / "gutenberg_authors.csv")
    ap.add_argument("--llm", type=Path, default=SHARED / "gb_authors_wikidata_llm_dates.jsonl")
    ap.add_argument("--slices", type=Path, default=SHARED / "slices")
    ap.add_argument("--style-model", type=Path, default=None)
    ap.add_argument("--reference", type=Path, default=ROOT / "bench" / "dating_reference.csv")
    ap.add_argument("--per-work", action="store_true", help="print one line per reference work")
    args = ap.parse_args(argv)
    if not args.texts.is_dir():
        print(f"skip: {args.texts} not found (the shared Gutenberg data sits beside the repo as ../shared)")
        return 0

    ref = load_reference(args.reference)
    t0 = time.time()
    table = load_authors_table(args.authors)
    index = AuthorIndex(table.records)
    if args.style_model:
        style = StyleModel.load(args.style_model)
    else:
        style = train_style_model(args.slices)
        style.save(Path(tempfile.mkdtemp(prefix="style_model_")))
    setup_s = time.time() - t0

    works = []
    for f in sorted(args.texts.glob("*.txt")):
        works.append(work_from_text(f.read_text(encoding="utf-8", errors="replace"), f.stem, str(f)))
    llm = load_llm_years(args.llm) if args.llm.exists() else {}
    # the paper's 70B answers fed in as the optional `llm` evidence (what the generation layer would produce)
    llm_ev = llm_evidence({i: str(y) for i, y in llm.items()}, model="paper 70B")
    configs = {
        "text evidence only": dict(author_index=None, style_model=None),
        "text + author life": dict(author_index=index, style_model=None),
        "text + style": dict(author_index=None, style_model=style),
        "full, without same-author lists": dict(author_index=index, style_model=style, listings=False),
        "full (text + author + style)": dict(author_index=index, style_model=style),
        "full + LLM answer as evidence": dict(author_index=index, style_model=style, llm=True),
    }
    rows: dict[str, dict[str, dict]] = {}
    bounded: dict[str, dict] = {}
    t1 = time.time()
    for name, kw in configs.items():
        use_llm, use_listings = kw.pop("llm", False), kw.pop("listings", True)
        extra = {w.id: list(llm_ev.get(w.id, [])) if use_llm else [] for w in works}
        rows[name] = {w.id: date_work(w, slices=DEFAULT_SLICES, extra_evidence=extra[w.id], **kw) for w in works}
        if use_listings:
            # the flow's corpus-level pass: works listed by another dated work of their author, dated again
            bounded[name] = listing_evidence(list(rows[name].values()))
            for w in works:
                if w.id in bounded[name]:
                    rows[name][w.id] = date_work(w, slices=DEFAULT_SLICES,
                                                 extra_evidence=extra[w.id] + bounded[name][w.id], **kw)
    run_s = time.time() - t1

    ids = [i for i in ref if i in rows["full (text + author + style)"]]
    full = rows["full (text + author + style)"]
    subsets = {
        "all reference works": ids,
        "fiction (novels, stories, children)": [i for i in ids if ref[i]["form"] in FICTION],
        "novels": [i for i in ids if ref[i]["form"] == "novel"],
        "works whose text carries dates (decided by text evidence)":
            [i for i in ids if full[i]["date_source"] not in ("style", "author_prior")],
        "works without dates in the text (author life / style decide)":
            [i for i in ids if full[i]["date_source"] in ("style", "author_prior")],
    }
    print(f"\nDate attribution vs cited first-edition years ({args.reference.name}; {len(ids)} of {len(works)} "
          f"shared books; the rest are collections/compilations without one first-edition year)")
    print(f"style model: {json.dumps(style.metrics)}")
    for sub_name, sub in subsets.items():
        print(f"\n### {sub_name}\n")
        print("| method                             |   n | dated |  exact | within5 |   MAE |  slice |")
        print("|------------------------------------|-----|-------|--------|---------|-------|--------|")
        for name in configs:
            print(fmt_row(name, metrics([(rows[name][i]["year"], ref[i]["year"]) for i in sub])))
        llm_pairs = [(llm.get(i), ref[i]["year"]) for i in sub]
        print(fmt_row("70B LLM (paper's labels)", metrics(llm_pairs)))
    if args.per_work:
        print("\n| id | reference | ours | range | slice ok | conf | source | LLM | title |")
        print("|---|---|---|---|---|---|---|---|---|")
        for i in ids:
            r = full[i]
            ok = "yes" if slice_of(r["year"]) == slice_of(ref[i]["year"]) else "NO"
            print(f"| {i} | {ref[i]['year']} | {r['year']} | {r['year_low']}-{r['year_high']} | {ok} | "
                  f"{r['confidence']:.2f} | {r['date_source']} | {llm.get(i)} | {(r['title'] or '')[:40]} |")
        print("\nworks bounded by another work's list (full): " + ", ".join(
            f"{i} <= {ev[0].high} (listed by {ev[0].detail['listing_work']})"
            for i, ev in sorted(bounded["full (text + author + style)"].items())))
        others = [w.id for w in works if w.id not in ref]
        print("\nworks without a reference year:")
        for i in others:
            r = full[i]
            print(f"  {i}: {r['year']} ({r['year_low']}-{r['year_high']}) {r['slice']} {r['date_source']} "
                  f"flags={r['flags']} LLM={llm.get(i)} | {(r['title'] or '')[:50]}")
    print(f"\nsetup {setup_s:.1f}s (authors table {len(table.records)} rows, style model), "
          f"dating {len(works)} books x {len(configs)} configs {run_s:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
