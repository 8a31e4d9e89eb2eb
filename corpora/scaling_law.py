"""The multilingual scaling law of He et al. (2024, arXiv 2410.12883) and the sampling ratios it implies.

Per family i, L_i(N, D, p_i) = (E_i + A_i / N^alpha_i + B_i / D^beta_i) * p_i^(-gamma_i): N parameters, D training
tokens (all families), p_i the family's sampling ratio; the family's loss depends only on its own ratio.

Fit (per family, independently): Huber loss (delta 1e-3) on log L, L-BFGS-B over a grid of starting points, with
E, A, B as exp() of free parameters (the procedure of Hoffmann et al. 2022, App. D.2, which the paper's law
extends); uncertainty by a bootstrap over the family's runs (refits started from the point estimate).

Optimal ratios: minimise sum_i w_i * L_i(N, D, p_i) / norm_i subject to sum p_i = 1 and floor_i <= p_i <= cap_i.
`normalise: p1` divides by the family's loss at p_i = 1 (L_i(N, D, 1)), so the objective is sum_i w_i p_i^-gamma_i,
the same for every N and D (the paper's ratios found at 85M hold at 1.2B); `none` sums the raw losses. `p1` is our
reading of the paper's "normalised" sum (its section 4 could not be read through the search tool; README, mix-ratios:
it is the normalisation under which both the 85M -> 1.2B transfer and "emphasises high-gamma families" hold).

Pure functions on arrays and dicts: the flow (flows/mix_ratios.py) reads tables and writes outputs. Here rather
than filters/ because it maps a table of runs to a share table for the mix plan (corpora/mix_plan.py)."""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, minimize

PARAMS = ("E", "A", "alpha", "B", "beta", "gamma")


class FitError(ValueError):
    """A family that cannot be fitted (too few runs, no variation): one line naming the family and why."""


@dataclass
class LawParams:
    E: float
    A: float
    alpha: float
    B: float
    beta: float
    gamma: float

    def loss(self, N, D, p):
        N, D, p = (np.asarray(x, dtype=float) for x in (N, D, p))
        return (self.E + self.A / N ** self.alpha + self.B / D ** self.beta) * p ** (-self.gamma)

    def as_dict(self) -> dict:
        return asdict(self)


def _unpack(theta: np.ndarray) -> LawParams:
    e, a, alpha, b, beta, gamma = theta
    return LawParams(math.exp(e), math.exp(a), alpha, math.exp(b), beta, gamma)


def _log_pred(theta: np.ndarray, logN, logD, logp) -> np.ndarray:
    e, a, alpha, b, beta, gamma = theta
    return np.logaddexp(np.logaddexp(e, a - alpha * logN), b - beta * logD) - gamma * logp


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _objective(theta, logN, logD, logp, logL, delta):
    return float(_huber(_log_pred(theta, logN, logD, logp) - logL, delta).sum())


BOUNDS = [(-5.0, 5.0), (-5.0, 40.0), (0.0, 2.5), (-5.0, 40.0), (0.0, 2.5), (-0.5, 2.0)]
GRID = {"e": (0.0, 1.0), "a": (3.0, 8.0), "alpha": (0.2, 0.5), "b": (3.0, 8.0), "beta": (0.3,), "gamma": (0.1,)}


def _solve(starts, logN, logD, logp, logL, delta):
    best = None
    for x0 in starts:
        r = minimize(_objective, np.asarray(x0, float), args=(logN, logD, logp, logL, delta), method="L-BFGS-B",
                     bounds=BOUNDS)
        if best is None or r.fun < best.fun:
            best = r
    return best


def fit_family(N, D, p, L, *, delta: float = 1e-3, family: str = "") -> tuple[LawParams, dict]:
    """Fit one family's law to its runs; returns the parameters and goodness of fit (R^2 of log loss, RMSE of
    relative error, Huber objective)."""
    N, D, p, L = (np.asarray(x, dtype=float) for x in (N, D, p, L))
    if len(L) < len(PARAMS) + 1:
        raise FitError(f"family '{family}': {len(L)} runs, the law has {len(PARAMS)} parameters (need >= 7)")
    for name, x in (("params", N), ("tokens", D), ("ratio", p)):
        if np.unique(x).size < 2:
            raise FitError(f"family '{family}': every run has the same {name}; the fit needs it to vary")
    logN, logD, logp, logL = np.log(N), np.log(D), np.log(p), np.log(L)
    best = _solve(itertools.product(*GRID.values()), logN, logD, logp, logL, delta)
    params = _unpack(best.x)
    return params, {**goodness(params, N, D, p, L), "huber": float(best.fun), "theta": best.x.tolist()}


def goodness(params: LawParams, N, D, p, L) -> dict:
    pred = params.loss(N, D, p)
    logL, logP = np.log(L), np.log(pred)
    ss_res = float(((logL - logP) ** 2).sum())
    ss_tot = float(((logL - logL.mean()) ** 2).sum())
    rel = (pred - L) / L
    return {"runs": int(len(L)), "r2_log": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "rmse_rel": float(np.sqrt((rel ** 2).mean())), "max_abs_rel": float(np.abs(rel).max())}


def bootstrap(N, D, p, L, theta: list[float], *, n: int = 100, seed: int = 0, delta: float = 1e-3) -> dict:
    """Bootstrap over runs: per parameter the std and the 2.5/97.5 percentiles of the refits."""
    N, D, p, L = (np.asarray(x, dtype=float) for x in (N, D, p, L))
    rng = np.random.default_rng(seed)
    logs = np.log(N), np.log(D), np.log(p), np.log(L)
    draws = []
    for _ in range(n):
        idx = rng.integers(0, len(L), len(L))
        r = _solve([theta], *(x[idx] for x in logs), delta)
        draws.append(list(_unpack(r.x).as_dict().values()))
    arr = np.asarray(draws)
    return {k: {"std": float(arr[:, j].std(ddof=1)), "p2.5": float(np.percentile(arr[:, j], 2.5)),
                "p97.5": float(np.percentile(arr[:, j], 97.5))} for j, k in enumerate(PARAMS)} | {"n": n}


def _weights(families, weights):
    w = np.array([float(weights.get(f, 1.0)) for f in families])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("family weights are numbers >= 0, at least one > 0")
    return w


def objective(params: dict[str, LawParams], p, N: float, D: float, weights: dict[str, float] | None = None,
              normalise: str = "p1") -> float:
    """The weighted (normalised) sum of the families' predicted losses at ratios p (in the order of `params`)."""
    fams = list(params)
    w = _weights(fams, weights or {})
    p = np.asarray(p, dtype=float)
    total = 0.0
    for wi, f, pi in zip(w, fams, p):
        lp = params[f].loss(N, D, pi)
        total += wi * (lp / params[f].loss(N, D, 1.0) if normalise == "p1" else lp)
    return float(total)


def optimal_ratios(params: dict[str, LawParams], N: float, D: float, weights: dict[str, float] | None = None,
                   floors: dict[str, float] | None = None, caps: dict[str, float] | None = None,
                   normalise: str = "p1") -> dict[str, float]:
    """Ratios minimising the objective with sum 1 and floor <= p <= cap (default floor 1e-6, cap 1).

    At the optimum the marginal losses are equal: w_i C_i gamma_i p_i^(-gamma_i - 1) = lam for the families not at
    a bound (C_i = 1 normalised, else E_i + A_i/N^alpha_i + B_i/D^beta_i); a bisection on lam with the ratios
    clipped to their bounds finds it exactly (the objective is convex for gamma_i > 0)."""
    if normalise not in ("p1", "none"):
        raise ValueError(f"normalise: {normalise!r} (p1 or none)")
    fams = list(params)
    w = _weights(fams, weights or {})
    floors, caps = floors or {}, caps or {}
    for k in list(floors) + list(caps):
        if k not in params:
            raise ValueError(f"floor/cap for '{k}', which is not a fitted family ({', '.join(fams)})")
    lo = np.array([float(floors.get(f, 1e-6)) for f in fams])
    hi = np.array([float(caps.get(f, 1.0)) for f in fams])
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12 or (lo > hi).any():
        raise ValueError(f"floors sum to {lo.sum():g}, caps to {hi.sum():g}: no ratios sum to 1 within them")
    g = np.array([params[f].gamma for f in fams])
    if (g <= 0).any():
        bad = fams[int(np.argmax(g <= 0))]
        raise ValueError(f"family '{bad}': fitted gamma {params[bad].gamma:.4g} <= 0, its loss does not fall with "
                         f"its ratio; the optimum is not defined (give it a floor/cap or drop it)")
    C = np.ones(len(fams)) if normalise == "p1" else np.array(
        [params[f].E + params[f].A / N ** params[f].alpha + params[f].B / D ** params[f].beta for f in fams])
    k = w * C * g

    def ratios(log_lam):
        with np.errstate(divide="ignore", over="ignore"):
            p = np.exp((np.log(np.maximum(k, 1e-300)) - log_lam) / (g + 1))
        p = np.where(k > 0, p, 0.0)
        return np.clip(p, lo, hi)

    a, b = -200.0, 200.0
    log_lam = brentq(lambda x: ratios(x).sum() - 1.0, a, b, xtol=1e-14, maxiter=500)
    p = ratios(log_lam)
    p = p / p.sum()
    return dict(zip(fams, (float(x) for x in p)))


def loss_surface(params: dict[str, LawParams], Ns, Ds, ratios: dict[str, float]) -> list[dict]:
    """Predicted loss per family on a grid of model sizes and token budgets at the given ratios."""
    out = []
    for f, prm in params.items():
        for N in Ns:
            for D in Ds:
                out.append({"family": f, "params": float(N), "tokens": float(D), "ratio": ratios[f],
                            "predicted_loss": float(prm.loss(N, D, ratios[f]))})
    return out


def simulate_runs(truth: dict[str, LawParams], Ns, Ds, mixtures: list[dict[str, float]], *, noise: float = 0.005,
                  seed: int = 0) -> list[dict]:
    """Runs shaped like the paper's: every (model size, token budget, mixture), one row per family, loss with
    multiplicative log-normal noise of relative size `noise`."""
    rng = np.random.default_rng(seed)
    rows = []
    for N in Ns:
        for D in Ds:
            for m, mix in enumerate(mixtures):
                for f, prm in truth.items():
                    L = float(prm.loss(N, D, mix[f])) * math.exp(rng.normal(0, noise))
                    rows.append({"run": f"N{N:.0e}-D{D:.0e}-m{m}", "family": f, "ratio": mix[f],
                                 "params": float(N), "tokens": float(D), "loss": L})
    return rows


# parameters shaped like the paper's five families (losses ~2-4 nats, gamma 0.05-0.25): synthetic, not theirs
PAPER_LIKE = {
    "indo_european": LawParams(E=1.6, A=420.0, alpha=0.34, B=900.0, beta=0.30, gamma=0.06),
    "sino_tibetan": LawParams(E=1.9, A=380.0, alpha=0.33, B=1100.0, beta=0.31, gamma=0.10),
    "japonic": LawParams(E=1.7, A=300.0, alpha=0.32, B=700.0, beta=0.29, gamma=0.14),
    "koreanic": LawParams(E=1.5, A=350.0, alpha=0.33, B=800.0, beta=0.30, gamma=0.18),
    "dravidian": LawParams(E=1.2, A=260.0, alpha=0.31, B=600.0, beta=0.28, gamma=0.24),
}
SAMPLE_NS = (85e6, 200e6, 400e6)
SAMPLE_DS = (2e9, 6e9, 20e9)


def sample_mixtures(families, n: int = 6, seed: int = 1) -> list[dict[str, float]]:
    """Seeded Dirichlet mixtures (alpha 1) with every ratio >= 0.02, for synthetic runs."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        x = rng.dirichlet(np.ones(len(families)))
        if x.min() >= 0.02:
            out.append({f: round(float(v), 4) for f, v in zip(families, x)})
    return out


def fit_figure(rows: list[dict], params: dict, out: Path) -> None:
    """Observed vs predicted loss per family, and each family's loss against its ratio at the largest N, D run."""
    from matplotlib.figure import Figure  # no pyplot: no backend state changed

    fams = list(params)
    fig = Figure(figsize=(4 * len(fams), 6.4))
    axes = fig.subplots(2, len(fams), squeeze=False)
    for j, f in enumerate(fams):
        rs = [r for r in rows if r["family"] == f]
        obs = np.array([r["loss"] for r in rs])
        pred = params[f].loss([r["params"] for r in rs], [r["tokens"] for r in rs], [r["ratio"] for r in rs])
        ax = axes[0][j]
        ax.scatter(pred, obs, s=8)
        lim = [min(obs.min(), pred.min()), max(obs.max(), pred.max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(title=f, xlabel="predicted loss", ylabel="observed loss")
        N, D = max(r["params"] for r in rs), max(r["tokens"] for r in rs)
        pts = [r for r in rs if r["params"] == N and r["tokens"] == D]
        grid = np.linspace(0.01, 1, 100)
        ax = axes[1][j]
        ax.plot(grid, params[f].loss(N, D, grid), label=f"fit N={N:.2g}, D={D:.2g}")
        ax.scatter([r["ratio"] for r in pts], [r["loss"] for r in pts], s=12, color="C1", label="runs")
        ax.set(xscale="log", xlabel="sampling ratio p", ylabel="loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, format="svg")


# ---- the runs table ----------------------------------------------------------------------------------------------
RUN_COLUMNS = ("family", "ratio", "params", "tokens", "loss")


def _plan_values(path: str, family: str, cache: dict) -> tuple[float, float]:
    """(ratio, tokens) of `family` in a mix output's plan.json (its delivered share and the delivered total)."""
    import json
    from pathlib import Path

    if path not in cache:
        p = Path(path).expanduser()
        p = p / "plan.json" if p.is_dir() else p
        cache[path] = json.loads(p.read_text(encoding="utf-8"))
    plan = cache[path]
    g = plan.get("groups", {}).get(family)
    if g is None:
        raise ValueError(f"plan {path} has no group '{family}' (groups: {', '.join(plan.get('groups', {}))})")
    return float(g["delivered_share"]), float(plan["delivered_tokens"])


def read_runs(path: str) -> tuple[list[dict], list[dict]]:
    """Rows of a runs table (CSV or Parquet): `family, ratio, params, tokens, loss` (or a `plan` column naming a
    mix output's plan.json, from which ratio and tokens come). Returns (good rows, quarantined rows with file,
    location, error): a row with a missing or bad value is quarantined with its reason, never dropped."""
    import csv
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        raw = pq.read_table(p).to_pylist()
        first = 0
    else:
        with p.open(newline="", encoding="utf-8") as f:
            raw = list(csv.DictReader(f))
        first = 2  # line numbers: the header is line 1
    cols = set(raw[0]) if raw else set()
    need = {"family", "params", "loss"} | (set() if "plan" in cols else {"ratio", "tokens"})
    if raw and need - cols:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(need - cols))} (need {', '.join(RUN_COLUMNS)}"
                         f", or family, params, loss and plan)")
    good, bad, plans = [], [], {}
    for i, r in enumerate(raw):
        loc = f"line {i + first}" if first else f"row {i}"
        try:
            fam = str(r.get("family") or "").strip()
            if not fam:
                raise ValueError("empty family")
            if r.get("plan") not in (None, ""):
                ratio, tokens = _plan_values(str(r["plan"]), fam, plans)
                if r.get("ratio") not in (None, ""):
                    ratio = float(r["ratio"])
                if r.get("tokens") not in (None, ""):
                    tokens = float(r["tokens"])
            else:
                ratio, tokens = float(r["ratio"]), float(r["tokens"])
            row = {"run": str(r.get("run") or loc), "family": fam, "ratio": ratio, "params": float(r["params"]),
                   "tokens": tokens, "loss": float(r["loss"])}
            if not 0 < row["ratio"] <= 1:
                raise ValueError(f"ratio {row['ratio']} is not in (0, 1]")
            for k in ("params", "tokens", "loss"):
                if not (row[k] > 0 and math.isfinite(row[k])):
                    raise ValueError(f"{k} {row[k]} is not a finite number > 0")
            good.append(row)
        except (ValueError, TypeError, KeyError, OSError) as e:
            bad.append({"file": str(path), "location": loc, "error": f"{type(e).__name__}: {e}"})
    return good, bad
