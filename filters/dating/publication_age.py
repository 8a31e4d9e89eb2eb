"""When in an author's life a work appears: the prior over a work's year given the author's birth and death.

Fitted by `bench/fit_publication_age.py` on weak labels (the 70B LLM's year for ~10k Gutenberg works of 1,482
Wikidata-linked authors; authors of the benchmark's reference books left out) and shipped as
`publication_age.json` beside this module. Only the fitted shape is shipped, never any per-work year.

The model, per case:
  birth and death   age = year - birth is m(L) + s(L) * z, with L = death - birth (clipped), m and s linear in L
                    (long lives publish later and over a wider span) and z a smoothed empirical density
                    (right-skewed: late works, posthumous editions and label noise are in it)
  birth only        the empirical density of the age at the work
  death only        the empirical density of death - year
and, optionally, the corpus coverage: a work of a public-domain corpus (Gutenberg) is rarely later than the
1920s, so an author born in 1874 has few works from the 1930s in it. That is a property of the corpus, not of
authors: `coverage=False` drops it for corpora that run later.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

PARAMS_PATH = Path(__file__).with_name("publication_age.json")


@lru_cache(maxsize=4)
def load_params(path: str | None = None) -> dict:
    with open(path or PARAMS_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def _hist_density(values: np.ndarray, start: float, width: float, probs: list[float]) -> np.ndarray:
    """Piecewise-constant density read from a histogram (probabilities per bin); 0 outside."""
    p = np.asarray(probs, dtype=float)
    idx = np.floor((values - start) / width).astype(int)
    ok = (idx >= 0) & (idx < len(p))
    out = np.zeros(len(values))
    out[ok] = p[idx[ok]] / width
    return out


def lifespan_location_scale(lifespan: float, params: dict) -> tuple[float, float]:
    lm = params["lifespan_model"]
    L = float(np.clip(lifespan, *lm["lifespan_clip"]))
    return lm["loc_a"] + lm["loc_b"] * L, max(lm["scale_a"] + lm["scale_b"] * L, 1.0)


def coverage(grid: np.ndarray, params: dict) -> np.ndarray:
    """Share of a period's works that the corpus holds, relative to earlier periods (a logistic fall)."""
    c = params["coverage"]
    return 1.0 / (1.0 + np.exp((grid - c["center"]) / c["width"]))


def publication_year_density(grid: np.ndarray, birth: int | None, death: int | None, params: dict | None = None,
                             use_coverage: bool = True) -> np.ndarray | None:
    """Unnormalised density of the work's year over `grid` from the author's life; None when neither is known."""
    params = params or load_params()
    if birth is None and death is None:
        return None
    if birth is not None and death is not None and death > birth:
        loc, scale = lifespan_location_scale(death - birth, params)
        z = (grid - birth - loc) / scale
        zh = params["z_hist"]
        dens = _hist_density(z, zh["start"], zh["width"], zh["probs"]) / scale
    elif birth is not None:
        h = params["age_hist"]
        dens = _hist_density((grid - birth).astype(float), h["start"], h["width"], h["probs"])
    else:
        h = params["death_minus_year_hist"]
        dens = _hist_density((death - grid).astype(float), h["start"], h["width"], h["probs"])
    if use_coverage:
        dens = dens * coverage(grid, params)
    return dens
