"""`flows run mix-ratios` on the bundled sample runs (generated from corpora.scaling_law.PAPER_LIKE): the shares file
it writes is read by mix's own plan code as it is, and its ratios are the optimum of the known parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from corpora.mix_plan import MixPlanConfig, read_shares_file, resolve_shares
from corpora.scaling_law import PAPER_LIKE, optimal_ratios


def test_sample_run_writes_a_shares_file_mix_reads(tmp_path, prefect_harness):
    from flows.mix_ratios import MixRatiosConfig, mix_ratios_flow

    out = tmp_path / "mr"
    bad = tmp_path / "runs_bad.csv"
    sample = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "mix_ratio_runs.csv"
    bad.write_text(sample.read_text() + "N-x,koreanic,0.2,abc,1e9,3.0\n")
    res = mix_ratios_flow(MixRatiosConfig(inputs=[str(bad)], output=str(out), bootstrap=10))
    ratios = res["ratios"]
    truth = optimal_ratios(PAPER_LIKE, 1.2e9, 100e9)
    assert max(abs(ratios[f] - truth[f]) for f in truth) < 0.01, (ratios, truth)
    shares = read_shares_file(str(out / "shares.csv"))
    assert shares == {f: round(p, 6) for f, p in ratios.items()}
    cfg = MixPlanConfig(by="language", families={f: [f] for f in shares}, shares_file=str(out / "shares.csv"))
    assert resolve_shares(cfg, {"web": None}) == shares
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"] and stats["invariant"]["rows_quarantine"] == 1
    assert pq.read_table(next((out / "fit").glob("*.parquet"))).num_rows == 5
    assert (out / "fit.svg").read_text().startswith("<?xml")
    fit = json.loads((out / "fit.json").read_text())
    assert fit["objective_optimal"] < fit["objective_uniform"]
    assert all(v["bootstrap"]["gamma"]["std"] < 0.01 for v in fit["families"].values())
