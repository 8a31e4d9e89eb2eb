"""`flows run mix-ratios --input runs.csv`: fit He et al.'s multilingual scaling law per family to small runs, and
write the optimal sampling ratios for a target model size / token budget as a `shares_file` for `mix`.

Outputs: data/ (every input run with its predicted loss), fit/ (parameters, bootstrap std and 95% interval,
goodness of fit per family), surface/ (predicted loss on a grid of N x D at the optimal ratios), quarantine/,
shares.csv (`mix --set shares_file=<output>/shares.csv`), fit.json and fit.svg (fitted curves and the points)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.config import StrictModel
from corpora.plan import WORK_DIR
from corpora.records import QUARANTINE_SCHEMA
from corpora.scaling_law import bootstrap, fit_family, fit_figure, loss_surface, objective, optimal_ratios, read_runs
from flows.config import RunConfig
from flows.registry import Pipeline
from flows.reporting import run_logger
from flows.scaffold import Run

SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "mix_ratio_runs.csv"


class RatioTarget(StrictModel):
    params: float = Field(1.2e9, gt=0)  # model size N the ratios are for
    tokens: float = Field(100e9, gt=0)  # training tokens D
    weights: dict[str, float] = {}  # family -> weight in the objective (absent: 1)
    floors: dict[str, float] = {}  # family -> least ratio (absent: 1e-6)
    caps: dict[str, float] = {}  # family -> largest ratio (absent: 1)
    normalise: Literal["p1", "none"] = "p1"  # p1: each loss over its loss at ratio 1 (the paper's); none: raw sum


class MixRatiosConfig(RunConfig):
    target: RatioTarget = RatioTarget()
    bootstrap: int = Field(50, ge=0)  # bootstrap refits per family (0: none)
    seed: int = 0
    huber_delta: float = Field(1e-3, gt=0)
    surface_params: list[float] = [85e6, 400e6, 1.2e9, 3e9, 7e9]
    surface_tokens: list[float] = [10e9, 50e9, 100e9, 300e9, 1e12]


@task(name="fit-families", cache_policy=NO_CACHE)
def fit_all(rows: list[dict], cfg: MixRatiosConfig) -> tuple[dict, dict]:
    params, report = {}, {}
    for fam in sorted({r["family"] for r in rows}):
        rs = [r for r in rows if r["family"] == fam]
        cols = [[r[k] for r in rs] for k in ("params", "tokens", "ratio", "loss")]
        prm, good = fit_family(*cols, delta=cfg.huber_delta, family=fam)
        boot = bootstrap(*cols, good["theta"], n=cfg.bootstrap, seed=cfg.seed, delta=cfg.huber_delta) \
            if cfg.bootstrap else {}
        params[fam] = prm
        report[fam] = {"params": prm.as_dict(), "fit": {k: v for k, v in good.items() if k != "theta"},
                       "bootstrap": boot}
        run_logger().info("%s: %d runs, gamma %.4f, R^2(log) %.4f", fam, len(rs), prm.gamma, good["r2_log"])
    return params, report


def _table(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@flow(name="mix-ratios", log_prints=True)
def mix_ratios_flow(config: MixRatiosConfig) -> dict:
    run = Run.start("mix-ratios", config, kinds=("data", "fit", "surface", "quarantine"))
    work = run.out_dir / WORK_DIR / "mix-ratios"
    paths = [f for i in config.inputs for f in (sorted(Path(i).glob("*.csv")) + sorted(Path(i).glob("*.parquet"))
                                                 if Path(i).is_dir() else [Path(i)])] or [SAMPLE]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"mix-ratios: {missing[0]}: no such runs file (CSV or Parquet)")
    rows, bad = [], []
    for p in paths:
        g, b = read_runs(str(p))
        rows += g
        bad += b
    if not rows:
        raise ValueError(f"mix-ratios: no usable run rows in {', '.join(map(str, paths))} ({len(bad)} quarantined)")
    params, report = fit_all(rows, config)
    t = config.target
    ratios = optimal_ratios(params, t.params, t.tokens, t.weights, t.floors, t.caps, t.normalise)
    uniform = {f: 1 / len(params) for f in params}
    for r in rows:
        r["predicted_loss"] = float(params[r["family"]].loss(r["params"], r["tokens"], r["ratio"]))
    fit_rows = [{"family": f, **v["params"], **{f"{k}_std": s["std"] for k, s in v["bootstrap"].items()
                                                 if isinstance(s, dict)}, **v["fit"], "optimal_ratio": ratios[f]}
                for f, v in report.items()]
    run.publish("data", [_table(rows, work / "data.parquet")], pa.schema([]))
    run.publish("fit", [_table(fit_rows, work / "fit.parquet")], pa.schema([]))
    run.publish("surface", [_table(loss_surface(params, config.surface_params, config.surface_tokens, ratios),
                                   work / "surface.parquet")], pa.schema([]))
    run.publish("quarantine", [_table(bad, work / "quarantine.parquet")] if bad else [], QUARANTINE_SCHEMA)
    shares = run.out_dir / "shares.csv"
    shares.write_text("name,share\n" + "".join(f"{f},{p:.6f}\n" for f, p in ratios.items()), encoding="utf-8")
    result = {"target": t.model_dump(), "optimal_ratios": ratios, "shares_file": str(shares), "families": report,
              "objective_optimal": objective(params, list(ratios.values()), t.params, t.tokens, t.weights,
                                             t.normalise),
              "objective_uniform": objective(params, list(uniform.values()), t.params, t.tokens, t.weights,
                                             t.normalise)}
    atomic_write_json(run.out_dir / "fit.json", result)
    try:
        fit_figure(rows, params, run.out_dir / "fit.svg")
    except Exception as e:  # noqa: BLE001 - a figure is never a reason to fail a fit
        run_logger().warning("fit.svg not drawn: %s: %s", type(e).__name__, e)
    line = ("mix-ratios: " + ", ".join(f"{f} {p:.3f}" for f, p in ratios.items())
            + f" for N={t.params:.3g}, D={t.tokens:.3g} ({len(rows)} runs, {len(bad)} quarantined); "
            + f"use: flows run mix --set shares_file={shares}")
    stats = run.finish({"optimal_ratios": ratios, "families": {f: v["fit"] for f, v in report.items()}},
                       records_read=len(rows) + len(bad), summary=line, markdown="```\n" + line + "\n```",
                       inputs=[{"path": str(p)} for p in paths])
    return {"output": str(run.out_dir), "stats": stats, "ratios": ratios}


PIPELINE = Pipeline(
    name="mix-ratios",
    description="Fit the multilingual scaling law (He et al. 2024) to small runs; optimal family ratios -> "
                "a shares_file for mix",
    config_model=MixRatiosConfig,
    flow=mix_ratios_flow,
)
