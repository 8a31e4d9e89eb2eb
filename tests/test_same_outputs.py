"""Same results (issues 27 and 28): every pipeline's default run on fixed inputs gives the outputs recorded at the
base commit -- published rows as row sets, manifest row counts, dataset card text.

What runs: `tests/golden.py:CASES`, one per pipeline, each through the same entry `flows run` uses (config loaded,
preflight, the Prefect flow) on the bundled sample; generators on the replay backend (bench/data/replay/ for
ensemble-instruct and sphinx, deterministic answers built per request for textbooks and overgenerate, tests/data/golden/ for
impossible-distillation), tokenize on a fixed mix output (tests/data/golden/mix_output), remove on 5 ids of the
dolma case's output, diachronic on 6 shared Gutenberg books (skipped with the reason without ../shared), unlearning-whp
on 1 document with the baseline as the reinforced model (a SmolLM2 training step takes ~50 s on 2 busy cores). Not
covered: mix-ratios, quality-train, diachronic-train, unlearning-reinforce (they fit / train a model; whp's reinforce
step is not run either). What counts as volatile (times; paths, replaced by
placeholders; the config hash, which hashes paths) is listed in tests/golden.py and nowhere else.

The digests live in tests/data/golden_outputs.json, with the commit they were recorded at.

REFACTORS NEVER RE-RECORD. A refactor that makes this test fail changed an output: fix the refactor (the failure
names the pipeline, the kind, and a few rows that differ).

Re-record only after a DELIBERATE output change (a fix, a new column, a new default), in the commit that makes
the change or right after it, with a commit message that says which pipelines' outputs change and why:

    .venv/bin/python tests/golden.py --record --only sphinx     # just the pipelines that changed deliberately
    .venv/bin/python tests/golden.py --repeat --only sphinx     # each twice: the digests must agree
    git diff tests/data/golden_outputs.json                      # only the pipelines you meant

`--only` keeps every other pipeline's recorded digest (so they stay pinned to the older commit); without it every
pipeline is recorded anew (only after a change that deliberately touches them all). `python tests/golden.py --check`
prints the same comparison as this test without pytest.
"""
from __future__ import annotations

import pytest

import golden

RECORDED = golden.load_golden() if golden.GOLDEN.is_file() else None


@pytest.fixture(scope="module")
def runner(tmp_path_factory, prefect_harness):
    return golden.Runner(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", list(golden.CASES))
def test_same_outputs_as_recorded(name, runner):
    if RECORDED is None:
        pytest.fail(f"{golden.GOLDEN} is missing: record it at the base commit (see this module's docstring)")
    want = RECORDED["pipelines"].get(name)
    if want is None:
        why = RECORDED.get("skipped_when_recorded", {}).get(name)
        pytest.fail(f"{name}: no recorded digest in {golden.GOLDEN.name}"
                    + (f" (skipped when recorded: {why})" if why else ""))
    why = golden.missing_shared(golden.CASES[name])
    if why:
        pytest.skip(why)
    got = runner.digest(name, keep_rows=True)
    msgs = golden.compare(name, want, got)
    at = want.get("recorded_at_commit", RECORDED["recorded_at_commit"])[:12]
    assert not msgs, (f"{name}: outputs differ from the ones recorded at {at} "
                      "(a refactor must not change them; see tests/test_same_outputs.py):\n" + "\n".join(msgs))


def test_the_digest_sees_a_changed_row(tmp_path):
    """The comparison is not blind: one changed value in one row of a recorded kind is reported with its id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    rows = [{"id": f"d{i}", "text": f"text {i}", "n": i} for i in range(5)]
    (out / "manifest.json").write_text('{"status": "complete", "outputs": {"data": [{"rows": 5}]}}')
    (out / "README.md").write_text(f"card of {out} written 2026-12-07T11:18:35+00:00\n")
    pq.write_table(pa.Table.from_pylist(rows), out / "data" / "part-00000.parquet")
    want = golden.public(golden.digest_output(out, tmp_path, tmp_path))
    rows[3]["n"] = 30
    pq.write_table(pa.Table.from_pylist(rows[::-1]), out / "data" / "part-00000.parquet")  # order is not content
    (out / "README.md").write_text(f"card of {out} written 2027-01-01T00:00:00+00:00\n")  # times are volatile
    got = golden.digest_output(out, tmp_path, tmp_path, keep_rows=True)
    msgs = golden.compare("toy", want, got)
    assert len(msgs) == 2 and "data/ differs: 5 rows recorded, 5 now; 1 recorded rows not found now" in msgs[0]
    assert "row not recorded (id='d3')" in msgs[1] and '"n": 30' in msgs[1]
    rows[3]["n"] = 3
    pq.write_table(pa.Table.from_pylist(rows[::-1]), out / "data" / "part-00000.parquet")
    assert golden.compare("toy", want, golden.digest_output(out, tmp_path, tmp_path, keep_rows=True)) == []
