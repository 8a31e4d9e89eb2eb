"""Our own output folder as an input (issue 24): a folder holding our manifest.json means its published `data/`
(or the kinds named after a colon), never `_work/`, `manifest.json` or `stats.json`."""
import json

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
