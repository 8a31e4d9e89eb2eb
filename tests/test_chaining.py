"""Our own output folder as an input (issue 24): a folder holding our manifest.json means its published `data/`
(or the kinds named after a colon), never `_work/`, `manifest.json` or `stats.json`."""
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora.manifest import write_manifest
from corpora.mix_sources import MixSource, resolve_source
from corpora.readers import InputError, expand_inputs, read_records


def _output(root, work=True):
    """An output laid out as our pipelines publish it: data/, rejected/, manifest.json, stats.json, _work/."""
    root.mkdir()
    for kind, ids in (("data", ["d1", "d2"]), ("rejected", ["r1"])):
        (root / kind).mkdir()
        pq.write_table(pa.table({"id": ids, "text": [f"text of {i}" for i in ids]}),
                       root / kind / "part-00000.parquet")
    if work:
        (root / "_work" / "assign").mkdir(parents=True)
        pq.write_table(pa.table({"h": [1, 2]}), root / "_work" / "assign" / "x.parquet")
    write_manifest(root, pipeline="dolma", config={}, config_hash="x", inputs=[], outputs={"data": []},
                   started="now", status="completed")
    (root / "stats.json").write_text(json.dumps({"records_read": 3}))
    return root


def _ids(paths):
    return sorted(r.id for p in paths for r in read_records(p))


@pytest.mark.parametrize("work", [True, False])
def test_output_folder_as_dedup_input_reads_its_data_only(tmp_path, work):
    out = _output(tmp_path / "dolma", work)
    files = expand_inputs([out])
    assert [f.parent.name for f in files] == ["data"] and _ids(files) == ["d1", "d2"]


def test_output_kinds_after_a_colon(tmp_path):
    out = _output(tmp_path / "dolma")
    assert _ids(expand_inputs([f"{out}:rejected"])) == ["r1"]
    assert _ids(expand_inputs([f"{out}:data,rejected"])) == ["d1", "d2", "r1"]
    with pytest.raises(InputError, match="no 'nope/' folder"):
        expand_inputs([f"{out}:nope"])


@pytest.mark.parametrize("work", [True, False])
def test_output_folder_as_mix_source(tmp_path, work):
    out = _output(tmp_path / "dolma", work)
    src = resolve_source(MixSource(name="web", paths=[str(out)], share=1.0), tmp_path / "w")
    assert [f.path.parent.name for f in src.files] == ["data"]
    rej = resolve_source(MixSource(name="web", paths=[f"{out}:rejected"], share=1.0), tmp_path / "w2")
    assert [f.path.parent.name for f in rej.files] == ["rejected"]


# ---- end to end through the CLI (issue 24): a real dolma output chained into dedup --------------------------
@pytest.fixture(scope="module")
def dolma_run(tmp_path_factory, prefect_harness):
    from tests.test_reports import dolma_output

    return dolma_output(tmp_path_factory.getbasetemp() / "report_runs")  # built once per session, shared


def _rows(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_cli_dedup_of_our_rejected_kind(dolma_run, tmp_path):
    """`flows run dedup --input output/dolma:rejected`: through the CLI's preflight (check_output, the pipeline's
    preflight) into the flow, reading only `rejected/`: every rejected row read once, nothing quarantined (no
    `_work/` Parquet, no manifest/stats read as records)."""
    from typer.testing import CliRunner

    from flows.cli import app

    rejected = _rows(dolma_run, "rejected")
    assert rejected, "the dolma sample run rejects rows"
    out = tmp_path / "dedup-rejected"
    r = CliRunner().invoke(app, ["run", "dedup", "--input", f"{dolma_run}:rejected", "--output", str(out)])
    assert r.exit_code == 0, r.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["records_read"] == len(rejected) and stats["invariant"]["holds"]
    assert not _rows(out, "quarantine")
    got = _rows(out, "data") + _rows(out, "rejected")
    assert sorted(x["id"] for x in got) == sorted(x["id"] for x in rejected)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {Path(i["path"]).parent.name for i in manifest["inputs"]} == {"rejected"}
    # a kind the output lacks: one line, exit 2, before anything is written
    r = CliRunner().invoke(app, ["run", "dedup", "--input", f"{dolma_run}:nope", "--output", str(tmp_path / "x")])
    assert r.exit_code == 2 and "this output has no 'nope/' folder" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_a_run_without_rejected_rows_lists_only_loadable_configs(dolma_run, tmp_path):
    """dedup of dolma's already deduplicated `data/`: no rejected rows, so the card lists no `rejected` config,
    and every config it lists loads with `datasets.load_dataset(out, name)` (issue 24)."""
    import yaml
    from typer.testing import CliRunner

    from flows.cli import app

    datasets = pytest.importorskip("datasets", reason="datasets not installed (pip install -e .[test])")
    out = tmp_path / "dedup-data"
    r = CliRunner().invoke(app, ["run", "dedup", "--input", str(dolma_run), "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert not _rows(out, "rejected")
    header = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    names = [c["config_name"] for c in header["configs"]]
    assert "rejected" not in names and "default" in names
    for c in header["configs"]:
        for d in c["data_files"]:
            for pattern in d["path"]:
                assert list(out.glob(pattern)), (c["config_name"], pattern)
        ds = datasets.load_dataset(str(out), c["config_name"], cache_dir=str(tmp_path / "hf"))
        assert ds["train"].num_rows == sum(1 for _ in _rows(out, "data" if c["config_name"] == "default"
                                                             else c["config_name"]))
    assert datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))["train"]["id"] == \
        [x["id"] for x in _rows(out, "data")]


def test_cli_dolma_of_our_rejected_kind_examines_the_rows_again(dolma_run, tmp_path):
    """Our `rejected/` rows carry `reason`; read back, it is `upstream_reason` (in a run, `reason` marks a row that
    run rejected, and the steps pass such rows through unexamined: every row came out rejected, as it was)."""
    from typer.testing import CliRunner

    from flows.cli import app

    rejected = {x["id"]: x["reason"] for x in _rows(dolma_run, "rejected")}
    out = tmp_path / "dolma-rejected"
    r = CliRunner().invoke(app, ["run", "dolma", "--input", f"{dolma_run}:rejected", "--output", str(out)])
    assert r.exit_code == 0, r.output
    got = _rows(out, "data") + _rows(out, "rejected")
    assert sorted(x["id"] for x in got) == sorted(rejected) and not _rows(out, "quarantine")
    assert all(json.loads(x["metadata"])["upstream_reason"] == rejected[x["id"]] for x in got)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["filters"]["langid"]["docs_in"] == len(rejected)  # every row examined by the first filter
    # the same rule: a row dolma rejected for its language is rejected for it again
    again = {x["id"]: x["reason"] for x in _rows(out, "rejected")}
    assert all(again.get(i) == "langid" for i, why in rejected.items() if why == "langid")


def test_cli_dedup_of_our_rejected_kind_examines_the_rows_again(dolma_run, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path / "dedup-rejected"
    r = CliRunner().invoke(app, ["run", "dedup", "--input", f"{dolma_run}:rejected", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert _rows(out, "data") and {x["reason"] for x in _rows(out, "rejected")} <= {"url", "exact", "minhash",
                                                                                     "paragraph"}
