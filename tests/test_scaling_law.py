"""corpora/scaling_law.py: He et al.'s multilingual law fitted to runs generated from known parameters (noise added);
optimal ratios against an independent grid search; the paper's qualitative results on synthetic data shaped like
theirs (synthetic, stated as such: we have no access to their runs)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from corpora.scaling_law import (PAPER_LIKE, FitError, LawParams, fit_family, objective, optimal_ratios, read_runs,
                                 sample_mixtures, simulate_runs)

NS, DS = (20e6, 85e6, 300e6, 1.2e9), (1e9, 5e9, 25e9, 100e9)


def _fit(rows, fam):
    rs = [r for r in rows if r["family"] == fam]
    return fit_family(*([r[k] for r in rs] for k in ("params", "tokens", "ratio", "loss")), family=fam)


@pytest.fixture(scope="module")
def fitted():
    rows = simulate_runs(PAPER_LIKE, NS, DS, sample_mixtures(list(PAPER_LIKE), 4), noise=0.002, seed=3)
    return {f: _fit(rows, f) for f in PAPER_LIKE}


def test_recovers_known_parameters(fitted):
    # tolerances (0.2% loss noise, 4 N x 4 D x 4 mixtures): gamma +-0.01, E +-5%, alpha/beta +-0.03; A and B trade
    # off against their exponents, so they are checked within a factor 1.5 and through the predicted loss
    for f, truth in PAPER_LIKE.items():
        prm, good = fitted[f]
        assert abs(prm.gamma - truth.gamma) < 0.01, (f, prm)
        assert abs(prm.E - truth.E) / truth.E < 0.05, (f, prm)
        assert abs(prm.alpha - truth.alpha) < 0.03 and abs(prm.beta - truth.beta) < 0.03, (f, prm)
        assert 1 / 1.5 < prm.A / truth.A < 1.5 and 1 / 1.5 < prm.B / truth.B < 1.5, (f, prm)
        assert good["r2_log"] > 0.999 and good["rmse_rel"] < 0.004, (f, good)
        # extrapolation to a larger model and budget than any run
        for N, D, p in ((3e9, 300e9, 0.2), (7e9, 1e12, 0.5)):
            assert abs(prm.loss(N, D, p) / truth.loss(N, D, p) - 1) < 0.01, (f, N, D)


def _grid_optimum(params, N, D, normalise, step=0.005, lo=None):
    """Independent check: exhaustive grid over the simplex (3 families)."""
    fams = list(params)
    best, arg = np.inf, None
    ticks = np.arange(step, 1, step)
    for a, b in itertools.product(ticks, ticks):
        c = 1 - a - b
        if c < step / 2:
            continue
        p = (a, b, c)
        if lo and any(x < lo.get(f, 0) - 1e-12 for f, x in zip(fams, p)):
            continue
        v = objective(params, p, N, D, normalise=normalise)
        if v < best:
            best, arg = v, p
    return dict(zip(fams, arg))


@pytest.mark.parametrize("normalise", ["p1", "none"])
def test_optimal_ratios_match_grid_search(normalise):
    params = {f: PAPER_LIKE[f] for f in ("indo_european", "japonic", "dravidian")}
    for N, D in ((85e6, 2e9), (1.2e9, 100e9)):
        got = optimal_ratios(params, N, D, normalise=normalise)
        assert abs(sum(got.values()) - 1) < 1e-9
        grid = _grid_optimum(params, N, D, normalise)
        assert max(abs(got[f] - grid[f]) for f in params) < 0.01, (got, grid)
        assert objective(params, list(got.values()), N, D, normalise=normalise) <= \
            objective(params, list(grid.values()), N, D, normalise=normalise) + 1e-12


def test_floors_and_caps_bind_and_still_optimal():
    params = {f: PAPER_LIKE[f] for f in ("indo_european", "japonic", "dravidian")}
    free = optimal_ratios(params, 1e9, 1e11)
    got = optimal_ratios(params, 1e9, 1e11, floors={"indo_european": 0.3})
    assert abs(got["indo_european"] - 0.3) < 1e-9 and free["indo_european"] < 0.3
    grid = _grid_optimum(params, 1e9, 1e11, "p1", lo={"indo_european": 0.3})
    assert max(abs(got[f] - grid[f]) for f in params) < 0.01
    capped = optimal_ratios(params, 1e9, 1e11, caps={"dravidian": 0.2})
    assert abs(capped["dravidian"] - 0.2) < 1e-9
    with pytest.raises(ValueError, match="no ratios sum to 1"):
        optimal_ratios(params, 1e9, 1e11, floors={"indo_european": 0.7, "japonic": 0.5})
    with pytest.raises(ValueError, match="not a fitted family"):
        optimal_ratios(params, 1e9, 1e11, caps={"klingon": 0.2})


def test_weights_shift_ratio_towards_the_weighted_family():
    params = {f: PAPER_LIKE[f] for f in ("indo_european", "japonic", "dravidian")}
    base = optimal_ratios(params, 1e9, 1e11)
    more = optimal_ratios(params, 1e9, 1e11, weights={"indo_european": 4.0})
    assert more["indo_european"] > base["indo_european"] + 0.05


def test_paper_qualitative_results_on_synthetic_data(fitted):
    """Synthetic data shaped like the paper's (five families, gamma 0.06-0.24), not their runs:
    (1) gamma fitted on the small models alone equals gamma fitted on all sizes (gamma invariant to N);
    (2) normalised optimal ratios from 85M-only runs equal those at 1.2B within 0.01 (small-model ratios transfer);
    (3) families with larger gamma get larger optimal ratios at equal weights;
    (4) the normalised optimum beats uniform sampling on the objective."""
    rows = simulate_runs(PAPER_LIKE, (20e6, 40e6, 85e6), DS, sample_mixtures(list(PAPER_LIKE), 4), noise=0.002,
                         seed=5)
    small = {f: _fit(rows, f)[0] for f in PAPER_LIKE}
    for f in PAPER_LIKE:
        assert abs(small[f].gamma - fitted[f][0].gamma) < 0.01, f
    big = {f: fitted[f][0] for f in PAPER_LIKE}
    p_small = optimal_ratios(small, 85e6, 2e9)
    p_big = optimal_ratios(big, 1.2e9, 100e9)
    assert max(abs(p_small[f] - p_big[f]) for f in PAPER_LIKE) < 0.01, (p_small, p_big)
    order = sorted(PAPER_LIKE, key=lambda f: PAPER_LIKE[f].gamma)
    assert [p_big[f] for f in order] == sorted(p_big.values())
    uni = [1 / 5] * 5
    assert objective(big, list(p_big.values()), 1.2e9, 1e11) < objective(big, uni, 1.2e9, 1e11)


def test_fit_errors_name_the_family():
    with pytest.raises(FitError, match="family 'x': 3 runs"):
        fit_family([1e8] * 3, [1e9] * 3, [0.5] * 3, [3.0] * 3, family="x")
    with pytest.raises(FitError, match="same ratio"):
        fit_family(np.geomspace(1e7, 1e9, 8), np.geomspace(1e9, 1e11, 8), [0.5] * 8, np.linspace(4, 3, 8),
                   family="y")


def test_read_runs_quarantines_bad_rows_with_reason(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("family,ratio,params,tokens,loss\nen,0.5,1e8,1e9,3.1\nen,1.5,1e8,1e9,3.1\nen,0.5,abc,1e9,3\n"
                 ",0.5,1e8,1e9,3\n")
    good, bad = read_runs(str(f))
    assert len(good) == 1 and [b["location"] for b in bad] == ["line 3", "line 4", "line 5"]
    assert "ratio 1.5 is not in (0, 1]" in bad[0]["error"] and "empty family" in bad[2]["error"]
    g = tmp_path / "bad.csv"
    g.write_text("family,ratio,loss\nen,0.5,3\n")
    with pytest.raises(ValueError, match="missing column"):
        read_runs(str(g))


def test_read_runs_takes_ratio_and_tokens_from_a_plan(tmp_path):
    import json

    plan = tmp_path / "mixout"
    plan.mkdir()
    (plan / "plan.json").write_text(json.dumps({"delivered_tokens": 5000, "groups": {
        "en": {"delivered_share": 0.7}, "fr": {"delivered_share": 0.3}}}))
    f = tmp_path / "runs.csv"
    f.write_text(f"family,params,loss,plan\nen,1e8,3.0,{plan}\nfr,1e8,3.5,{plan}\nde,1e8,3.5,{plan}\n")
    good, bad = read_runs(str(f))
    assert [(r["ratio"], r["tokens"]) for r in good] == [(0.7, 5000.0), (0.3, 5000.0)]
    assert "no group 'de'" in bad[0]["error"]


def test_law_is_the_papers_formula():
    p = LawParams(E=1.5, A=100.0, alpha=0.3, B=200.0, beta=0.25, gamma=0.1)
    assert p.loss(1e8, 1e10, 0.25) == pytest.approx((1.5 + 100 / 1e8 ** 0.3 + 200 / 1e10 ** 0.25) * 0.25 ** -0.1)


def test_only_the_p1_normalisation_makes_ratios_independent_of_scale():
    """Why `p1` is our reading of the paper's normalised objective (README): dividing by L_i(N, D, 1) leaves
    sum_i w_i p_i^-gamma_i, so the optimum is the same at 85M/2B and 1.2B/100B; the raw sum (`none`) moves with N and D
    through each family's E_i + A_i/N^alpha_i + B_i/D^beta_i."""
    small, big = (85e6, 2e9), (1.2e9, 100e9)
    p1 = [optimal_ratios(PAPER_LIKE, *s) for s in (small, big)]
    raw = [optimal_ratios(PAPER_LIKE, *s, normalise="none") for s in (small, big)]
    assert max(abs(p1[0][f] - p1[1][f]) for f in PAPER_LIKE) < 1e-9
    assert max(abs(raw[0][f] - raw[1][f]) for f in PAPER_LIKE) > 1e-3, raw
