"""Fit the author's-age-at-publication prior (filters/dating/publication_age.json) on WEAK labels: the 70B LLM's
year for each Gutenberg work of the Wikidata-linked authors (gb_authors_wikidata_llm_dates.jsonl; ~60% exact,
errors mostly a few years, some a later edition). Only the distribution's shape is shipped, no per-work year.

    python bench/fit_publication_age.py [--labels JSONL] [--reference CSV] [--out JSON] [--check-only]

Honesty rules:
  - every author of a book in bench/dating_reference.csv (by name, score >= 90, or by holding a reference id) is
    left out, so the benchmark's books and their authors' careers never inform the prior;
  - the rest is split by author (hash) into fit (80%) and held-out (20%); the held-out authors' works score the
    old hand-set prior (N(46, 16) on age + flat tail + lifetime window) against the fitted one (log-likelihood of
    the LLM year, MAE of the prior median), then the shipped file is refitted on all non-reference authors;
  - each author weighs at most MAX_WORKS_PER_AUTHOR works, so a few prolific authors do not set the shape.
Steps: m(L), s(L) = median and IQR/1.349 of the age, per lifespan bin, fitted linearly on authors dead by 1900
(their works predate any public-domain cutoff); z = standardised residual histogram (smoothed); the corpus
coverage (logistic fall after ~1920) by maximum likelihood on the authors who died later, m, s, z held fixed.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filters.dating.authors import lifetime_window, name_score  # noqa: E402
from filters.dating.publication_age import PARAMS_PATH, publication_year_density  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "gutenberg"
MAX_WORKS_PER_AUTHOR = 20
UNTRUNCATED_DEATH = 1900  # authors dead by then: their works' years are not cut by the corpus' public-domain end
LIFESPAN_CLIP = (30.0, 95.0)
Z_START, Z_WIDTH, Z_BINS = -5.0, 0.1, 130  # z in [-5, 8)
GRID = np.arange(1450, 2031)


def _year(v) -> int | None:
    if not v:
        return None
    v = v.get("value") if isinstance(v, dict) else v
    m = re.match(r"^\s*(-?\d{1,4})", str(v))
    return int(m.group(1)) if m else None


def load_labels(path: Path, reference: Path) -> tuple[list[dict], list[str]]:
    """[{author, birth, death, years[]}] for authors not tied to the reference books; and the names left out."""
    ref_ids, ref_names = set(), set()
    with open(reference, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            ref_ids.add(r["id"])
            ref_names.add(r["author"])
    authors, excluded = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            name = o.get("gb_author") or ""
            ids = set((o.get("work_dates") or {}).keys()) | set((o.get("gb_works") or {}).values())
            if ids & ref_ids or any(name_score(name, rn) >= 90 for rn in ref_names):
                excluded.append(name)
                continue
            years = []
            for ans in (o.get("work_dates") or {}).values():
                m = re.search(r"\d{4}", str(ans))
                if m:
                    years.append(int(m.group()))
            b, d = _year(o.get("birthDate")), _year(o.get("deathDate"))
            if years and (b is None or b >= 1400):
                authors.append({"author": name, "birth": b, "death": d, "years": years})
    return authors, excluded


def _flatten(authors: list[dict]) -> tuple[np.ndarray, ...]:
    """birth, death (nan if unknown), year, weight per work; weight caps each author at MAX_WORKS_PER_AUTHOR."""
    b, d, y, w = [], [], [], []
    for a in authors:
        n = len(a["years"])
        for yr in a["years"]:
            b.append(np.nan if a["birth"] is None else a["birth"])
            d.append(np.nan if a["death"] is None else a["death"])
            y.append(yr)
            w.append(min(1.0, MAX_WORKS_PER_AUTHOR / n))
    return tuple(np.array(v, dtype=float) for v in (b, d, y, w))


def _wquantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, q * cw[-1])])


def _smoothed_hist(x: np.ndarray, w: np.ndarray, start: float, width: float, nbins: int, sigma_bins: float
                   ) -> list[float]:
    counts, _ = np.histogram(x, bins=nbins, range=(start, start + width * nbins), weights=w)
    k = np.arange(-4 * sigma_bins, 4 * sigma_bins + 1)
    kernel = np.exp(-0.5 * (k / sigma_bins) ** 2)
    sm = np.convolve(counts, kernel / kernel.sum(), mode="same") + 1e-3 * counts.sum() / nbins  # no hard zeros
    return [round(float(v), 6) for v in sm / sm.sum()]


def fit(authors: list[dict]) -> dict:
    b, d, y, w = _flatten(authors)
    both = ~np.isnan(b) & ~np.isnan(d) & (d > b)
    early = both & (d <= UNTRUNCATED_DEATH)
    age, L = (y - b), np.clip(d - b, *LIFESPAN_CLIP)
    # location and scale per lifespan bin, then linear in L (weighted by the bins' work counts)
    edges = np.percentile(L[early], np.linspace(0, 100, 9))
    mids, locs, scales, ns = [], [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = early & (L >= lo) & (L <= hi)
        if w[s].sum() < 20:
            continue
        mids.append(float(np.average(L[s], weights=w[s])))
        locs.append(_wquantile(age[s], w[s], 0.5))
        scales.append((_wquantile(age[s], w[s], 0.75) - _wquantile(age[s], w[s], 0.25)) / 1.349)
        ns.append(float(w[s].sum()))
    loc_b, loc_a = np.polyfit(mids, locs, 1, w=np.sqrt(ns))
    scale_b, scale_a = np.polyfit(mids, scales, 1, w=np.sqrt(ns))
    params = {"lifespan_model": {"loc_a": round(float(loc_a), 4), "loc_b": round(float(loc_b), 4),
                                 "scale_a": round(float(scale_a), 4), "scale_b": round(float(scale_b), 4),
                                 "lifespan_clip": list(LIFESPAN_CLIP)}}
    loc = loc_a + loc_b * L
    scale = np.maximum(scale_a + scale_b * L, 1.0)
    z = (age - loc) / scale
    params["z_hist"] = {"start": Z_START, "width": Z_WIDTH,
                        "probs": _smoothed_hist(z[early], w[early], Z_START, Z_WIDTH, Z_BINS, 2.0)}
    b_only = ~np.isnan(b) & ((np.isnan(d) & (y <= 1910)) | (d <= UNTRUNCATED_DEATH))
    params["age_hist"] = {"start": -20.0, "width": 1.0,
                          "probs": _smoothed_hist(age[b_only], w[b_only], -20.0, 1.0, 150, 2.0)}
    d_only = ~np.isnan(d) & (d <= UNTRUNCATED_DEATH)
    params["death_minus_year_hist"] = {"start": -40.0, "width": 1.0,
                                       "probs": _smoothed_hist((d - y)[d_only], w[d_only], -40.0, 1.0, 150, 2.0)}
    # coverage: maximum likelihood on the later authors, shape held fixed
    late = both & (d > UNTRUNCATED_DEATH)
    if not late.any():  # nobody lived past the cutoff: nothing says where the corpus ends, so no fall
        params["coverage"] = {"center": 2100.0, "width": 1.0}
        return params
    best = None
    for center in np.arange(1900, 1961, 1.0):
        for width in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0):
            params["coverage"] = {"center": float(center), "width": float(width)}
            ll = _loglik(params, b[late], d[late], y[late], w[late], use_coverage=True)
            if best is None or ll > best[0]:
                best = (ll, center, width)
    params["coverage"] = {"center": float(best[1]), "width": float(best[2])}
    return params


def _loglik(params, b, d, y, w, use_coverage=True) -> float:
    """Weighted mean log P(LLM year | birth, death) under the prior, per work; grouped by (birth, death)."""
    total, wsum = 0.0, 0.0
    keys = {}
    for i in range(len(y)):
        keys.setdefault((b[i], d[i]), []).append(i)
    for (bi, di), idx in keys.items():
        dens = publication_year_density(GRID, None if np.isnan(bi) else int(bi), None if np.isnan(di) else int(di),
                                        params, use_coverage=use_coverage)
        dens = dens / dens.sum() * 0.99 + 0.01 / len(GRID)  # the floor the combiner also keeps
        for i in idx:
            j = int(y[i]) - GRID[0]
            if 0 <= j < len(GRID):
                total += w[i] * np.log(dens[j])
                wsum += w[i]
    return total / wsum if wsum else float("-inf")


def _old_prior(birth, death) -> np.ndarray:
    """The hand-set prior this replaces: N(46, 16) on age with a 15% flat share, x0.1 outside the window."""
    if birth is not None:
        dens = np.exp(-0.5 * ((GRID - birth - 46.0) / 16.0) ** 2)
    else:
        dens = np.exp(-0.5 * ((death - GRID - 22.0) / 16.0) ** 2)
    lo, hi = lifetime_window(birth, death)
    dens = 0.85 * dens + 0.15
    return dens * np.where((GRID >= lo) & (GRID <= hi), 1.0, 0.1)


def evaluate(params: dict, authors: list[dict]) -> dict:
    """Held-out authors (both dates known): log-likelihood and MAE of the prior median, old vs fitted prior."""
    out = {}
    for name, fn in (("old N(46,16) prior", lambda bb, dd: _old_prior(bb, dd)),
                     ("fitted prior", lambda bb, dd: publication_year_density(GRID, bb, dd, params))):
        ll, err, n = 0.0, 0.0, 0
        for a in authors:
            if a["birth"] is None or a["death"] is None or a["death"] <= a["birth"]:
                continue
            dens = fn(a["birth"], a["death"])
            p = dens / dens.sum() * 0.99 + 0.01 / len(GRID)
            med = int(GRID[np.searchsorted(np.cumsum(p), 0.5)])
            for yr in a["years"]:
                j = yr - GRID[0]
                if 0 <= j < len(GRID):
                    ll += np.log(p[j])
                    err += abs(med - yr)
                    n += 1
        out[name] = {"works": n, "mean_loglik": round(float(ll / n), 4), "mae_of_median": round(float(err / n), 2)}
    return out


def _held_out(name: str) -> bool:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % 5 == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labels", type=Path, default=SHARED / "gb_authors_wikidata_llm_dates.jsonl")
    ap.add_argument("--reference", type=Path, default=ROOT / "bench" / "dating_reference.csv")
    ap.add_argument("--out", type=Path, default=PARAMS_PATH)
    ap.add_argument("--check-only", action="store_true", help="print the held-out comparison, write nothing")
    args = ap.parse_args(argv)
    if not args.labels.exists():
        print(f"skip: {args.labels} not found (the shared Gutenberg data sits beside the repo as ../shared)")
        return 0
    authors, excluded = load_labels(args.labels, args.reference)
    fit_set = [a for a in authors if not _held_out(a["author"])]
    held = [a for a in authors if _held_out(a["author"])]
    print(f"{len(authors)} authors ({sum(len(a['years']) for a in authors)} works) after leaving out "
          f"{len(excluded)} reference authors: {sorted(excluded)}")
    split_params = fit(fit_set)
    scores = evaluate(split_params, held)
    print(f"held-out authors: {len(held)}")
    for k, v in scores.items():
        print(f"  {k:<20} {v}")
    if args.check_only:
        return 0
    params = fit(authors)
    params["fit"] = {"labels": args.labels.name, "authors": len(authors),
                     "works": sum(len(a["years"]) for a in authors), "excluded_reference_authors": len(excluded),
                     "max_works_per_author": MAX_WORKS_PER_AUTHOR, "untruncated_death": UNTRUNCATED_DEATH,
                     "held_out_check (80/20 split by author)": scores,
                     "script": "bench/fit_publication_age.py"}
    args.out.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    lm = params["lifespan_model"]
    print(f"wrote {args.out}: age = {lm['loc_a']:.1f} + {lm['loc_b']:.3f} L, scale {lm['scale_a']:.1f} + "
          f"{lm['scale_b']:.3f} L; coverage falls at {params['coverage']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
