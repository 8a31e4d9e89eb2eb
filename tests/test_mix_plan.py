"""The mix plan on index files (what the count stage writes): shares within tolerance, caps, unmet shares,
budgets, seeds, families, share tables. Every delivered total is recomputed from the copies the plan gives."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora.mix_count import INDEX_SCHEMA
from corpora.mix_plan import BIN_BITS, MixPlanConfig, PlanError, make_plan, priority


def _index(tmp_path, groups: dict[str, tuple[int, float]], seed=0, files=2):
    """Index files: per group (docs, mean tokens) lognormal token counts, random 64-bit hashes."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, (n, mean) in groups.items():
        tok = np.maximum(1, rng.lognormal(np.log(mean), 0.6, n)).astype(np.int32)
        h = rng.integers(0, 2 ** 63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
        rows.append(pa.table({"row": np.arange(n, dtype=np.int64), "h": h, "tokens": tok,
                              "bytes": tok.astype(np.int64) * 4, "group": [g] * n}, schema=INDEX_SCHEMA))
    t = pa.concat_tables(rows)
    t = t.take(pa.array(rng.permutation(t.num_rows)))
    paths = []
    for i in range(files):
        p = tmp_path / f"index-{i}.parquet"
        pq.write_table(t.slice(i * t.num_rows // files, (i + 1) * t.num_rows // files - i * t.num_rows // files), p)
        paths.append(p)
    return paths, t


def _delivered(plan, t):
    h, g, tok = t.column("h").to_numpy(), t.column("group").to_pylist(), t.column("tokens").to_numpy()
    c = plan.copies(h, g)
    fam = np.asarray([plan.families.get(x, x) for x in g])
    out = {}
    for name in plan.groups:
        m = fam == name
        out[name] = (int((c[m].astype(np.int64) * tok[m]).sum()), c[m])
    return out


SOURCES = {"web": (3000, 400.0), "books": (200, 2000.0), "code": (800, 150.0)}


@pytest.mark.parametrize("budget, seed", [(300_000, 0), (900_000, 1), (1_500_000, 2), (51_234, 3)])
def test_shares_met_within_one_percent_and_copies_add_up(tmp_path, budget, seed):
    files, t = _index(tmp_path, SOURCES, seed=seed)
    shares = {"web": 0.5, "books": 0.3, "code": 0.2}
    plan = make_plan(MixPlanConfig(budget_tokens=budget, max_epochs=10), files, shares, {}, seed)
    got = _delivered(plan, t)
    for name, share in shares.items():
        g = plan.groups[name]
        assert g.target_tokens == round(share * budget)
        assert got[name][0] == g.delivered_tokens  # the plan's claim is what its copies give
        assert abs(g.delivered_tokens - g.target_tokens) <= 0.01 * g.target_tokens, (name, g)
        copies = got[name][1]
        assert set(np.unique(copies)) <= {g.full_epochs, g.full_epochs + 1}
        assert int((copies > g.full_epochs).sum()) == g.partial_docs
        assert g.rows == int(copies.sum())


def test_sample_is_a_prefix_in_priority_order_outside_the_fill_zone(tmp_path):
    files, t = _index(tmp_path, {"web": (60_000, 100.0)})
    plan = make_plan(MixPlanConfig(budget_tokens=2_000_000), files, {"web": 1.0}, {}, 5)
    g = plan.groups["web"]
    h = t.column("h").to_numpy()
    c = plan.copies(h, ["web"] * len(h))
    bins = (priority(h, 5) >> np.uint64(64 - BIN_BITS)).astype(np.int64)
    assert (c[bins < g.cut_bin] == 1).all()
    assert len(g.taken) < 5000 and c.sum() == g.partial_docs
    # beyond the zone (about 2,048 docs past the boundary), nothing is taken
    order = np.argsort(priority(h, 5))
    assert c[order[g.partial_docs + 4096:]].sum() == 0


def test_upsampling_cap_and_unmet_share(tmp_path):
    files, t = _index(tmp_path, SOURCES)
    avail = {n: int(t.filter(pa.compute.equal(t.column("group"), n)).column("tokens").to_numpy().sum())
             for n in SOURCES}
    shares = {"web": 0.2, "books": 0.2, "code": 0.6}
    budget = int(avail["code"] * 3.5 / 0.6)  # code needs 3.5 epochs
    plan = make_plan(MixPlanConfig(budget_tokens=budget, max_epochs=4), files, shares, {}, 0)
    code = plan.groups["code"]
    assert code.full_epochs == 3 and code.max_copies == 4
    assert _delivered(plan, t)["code"][1].max() == 4
    # a cap of 3 epochs for that source: the plan stops, naming it, before anything
    with pytest.raises(PlanError) as e:
        make_plan(MixPlanConfig(budget_tokens=budget, max_epochs=4), files, shares, {"code": 3.0}, 0)
    msg = str(e.value)
    assert "'code' needs" in msg and "3.50 epochs > max_epochs 3" in msg and "on_unmet=shrink" in msg
    assert "'web'" not in msg and "\n" not in msg
    # shrink: the largest budget that fits every cap; code then sits exactly at 3 epochs
    plan = make_plan(MixPlanConfig(budget_tokens=budget, max_epochs=4, on_unmet="shrink"), files, shares,
                     {"code": 3.0}, 0)
    assert plan.budget == int(3 * avail["code"] / 0.6) and "shrunk" in plan.notes[0]
    assert plan.groups["code"].full_epochs == 3 and plan.groups["code"].max_copies == 3
    # cap: the short group gets its cap, the others their share of the budget asked for
    plan = make_plan(MixPlanConfig(budget_tokens=budget, max_epochs=4, on_unmet="cap"), files, shares,
                     {"code": 3.0}, 0)
    assert plan.budget == budget and plan.groups["code"].status == "capped"
    assert plan.groups["code"].delivered_tokens == 3 * avail["code"]
    assert abs(plan.groups["web"].delivered_tokens - 0.2 * budget) <= 0.01 * 0.2 * budget


def test_no_budget_is_the_largest_without_repetition(tmp_path):
    files, t = _index(tmp_path, SOURCES)
    shares = {"web": 0.5, "books": 0.3, "code": 0.2}
    plan = make_plan(MixPlanConfig(), files, shares, {}, 0)
    got = _delivered(plan, t)
    assert all(c.max() <= 1 for _, c in got.values())
    scarce = min(plan.groups.values(), key=lambda g: g.available_tokens / g.share)
    assert scarce.delivered_tokens == scarce.available_tokens and "no repetition" in plan.notes[0]


def test_same_seed_same_sample_other_seed_other_sample(tmp_path):
    files, t = _index(tmp_path, SOURCES)
    cfg = MixPlanConfig(budget_tokens=400_000)
    shares = {"web": 0.5, "books": 0.3, "code": 0.2}
    h, g = t.column("h").to_numpy(), t.column("group").to_pylist()
    a = make_plan(cfg, files, shares, {}, 11).copies(h, g)
    b = make_plan(cfg, files[::-1], shares, {}, 11).copies(h, g)  # file order does not matter
    c = make_plan(cfg, files, shares, {}, 12).copies(h, g)
    assert (a == b).all() and not (a == c).all()


def test_by_column_with_families_shares_file_and_unknown_groups(tmp_path):
    files, t = _index(tmp_path, {"de": (500, 300.0), "fr": (500, 300.0), "en": (2000, 300.0), "xx": (50, 300.0)})
    table = tmp_path / "shares.csv"
    table.write_text("family,share\n# per family\nromance,0.25\ngermanic,0.75\n")
    cfg = MixPlanConfig(by="language", families={"romance": ["fr", "es"], "germanic": ["de", "en"]},
                        shares_file=str(table), budget_tokens=300_000)
    plan = make_plan(cfg, files, {"a": None}, {}, 0)
    assert set(plan.groups) == {"romance", "germanic"}
    assert plan.dropped["xx"]["docs"] == 50  # no family, no share: left out and reported
    got = _delivered(plan, t)
    assert abs(got["romance"][0] - 75_000) <= 750 and abs(got["germanic"][0] - 225_000) <= 2250
    yml = tmp_path / "shares.yaml"
    yml.write_text("romance: 1\ngermanic: 3\n")  # weights are normalised (and the plan says so)
    plan = make_plan(cfg.model_copy(update={"shares_file": str(yml)}), files, {"a": None}, {}, 0)
    assert plan.groups["romance"].share == 0.25 and "normalised" in plan.notes[0]


@pytest.mark.parametrize("content, message", [
    ("name,share\nweb,abc\n", "row 2: share 'abc' is not a number"),
    ("name,share\nweb\n", "row 2: expected name,share"),
])
def test_bad_share_tables(tmp_path, content, message):
    files, _ = _index(tmp_path, {"web": (10, 10.0)})
    p = tmp_path / "s.csv"
    p.write_text(content)
    with pytest.raises(PlanError, match=message):
        make_plan(MixPlanConfig(shares_file=str(p)), files, {"web": None}, {}, 0)


def test_source_shares_must_name_sources(tmp_path):
    files, _ = _index(tmp_path, {"web": (10, 10.0)})
    with pytest.raises(PlanError, match="source 'web' has no share"):
        make_plan(MixPlanConfig(), files, {"web": None}, {}, 0)
    with pytest.raises(PlanError, match="share for 'wbe', which is not a source"):
        make_plan(MixPlanConfig(shares={"wbe": 1.0}), files, {"web": 1.0}, {}, 0)
    with pytest.raises(PlanError, match="'web' needs 100 tokens .* and has none after its rules"):
        make_plan(MixPlanConfig(budget_tokens=100), [], {"web": 1.0}, {}, 0)


def test_closest_subset_equals_brute_force():
    import itertools

    from corpora.mix_plan import _closest_subset

    rng = np.random.default_rng(0)
    for _ in range(200):
        tok = rng.integers(1, 50, rng.integers(1, 11))
        need = int(rng.integers(0, 300))
        s, idx = _closest_subset(tok, need)
        assert s == tok[idx].sum() and len(set(idx)) == len(idx)
        best = min(abs(sum(c) - need) for r in range(len(tok) + 1) for c in itertools.combinations(tok.tolist(), r))
        assert abs(s - need) == best


def test_few_large_documents_still_land_within_tolerance(tmp_path):
    files, t = _index(tmp_path, {"books": (20, 1800.0)}, seed=4)
    avail = int(t.column("tokens").to_numpy().sum())
    plan = make_plan(MixPlanConfig(budget_tokens=int(avail * 1.66)), files, {"books": 1.0}, {}, 3)
    g = plan.groups["books"]
    assert g.status == "ok" and abs(g.delivered_tokens - g.target_tokens) <= 0.01 * g.target_tokens
    assert _delivered(plan, t)["books"][0] == g.delivered_tokens


def test_source_share_with_shares_by_a_column_is_an_error(tmp_path):
    files, _ = _index(tmp_path, {"de": (10, 10.0)})
    with pytest.raises(PlanError, match="source 'web' sets a share, but shares are by 'lang'"):
        make_plan(MixPlanConfig(by="lang", shares={"de": 1.0}), files, {"web": 0.5}, {}, 0)


def _one_large_doc(tmp_path):
    """Source a: 400 one-token documents; source b: one 200-token document. A 0.9/0.1 plan of 395 tokens needs
    about 40 tokens of b, which its single document cannot land within 1% of: b would get 0 rows."""
    rows = pa.table({"row": np.arange(401, dtype=np.int64),
                     "h": np.arange(1, 802, 2, dtype=np.uint64),
                     "tokens": np.array([1] * 400 + [200], dtype=np.int32),
                     "bytes": np.array([4] * 400 + [800], dtype=np.int64),
                     "group": ["a"] * 400 + ["b"]}, schema=INDEX_SCHEMA)
    p = tmp_path / "index-0.parquet"
    pq.write_table(rows, p)
    return [p]


def test_outside_tolerance_is_unmet_and_on_unmet_error_refuses(tmp_path):
    files = _one_large_doc(tmp_path)
    with pytest.raises(PlanError, match="mix plan cannot be met: 'b' delivered 0 of 40 tokens"):
        make_plan(MixPlanConfig(budget_tokens=395), files, {"a": 0.9, "b": 0.1}, {}, 0)


def test_outside_tolerance_with_on_unmet_cap_is_flagged_not_refused(tmp_path):
    files = _one_large_doc(tmp_path)
    plan = make_plan(MixPlanConfig(budget_tokens=395, on_unmet="cap"), files, {"a": 0.9, "b": 0.1}, {}, 0)
    assert plan.groups["b"].status == "outside_tolerance" and plan.groups["b"].delivered_tokens == 0
