"""`flows run dedup` for real (Prefect, datatrove executor, Parquet in/out), and dedup inside `flows run dolma`."""
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dedup_data import distinct_docs, gutenberg_words, mutate, shared_file, web_texts
from flows.config import defaults_yaml, load_config
from flows.dedup import DedupFlowConfig, dedup_flow

BOILER = "Share this article with your friends and family today!"


def rows(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two Parquet shards of real text with planted url / exact / paragraph / near duplicates and a leak."""
    rng = random.Random(4)
    web = [t for t in web_texts() if len(t) > 400][:120]
    books = distinct_docs(40, seed=4, min_words=150, max_words=250)
    tofu = json.loads(shared_file("unlearning", "tofu_forget01.json").read_text())
    docs = []
    for i, t in enumerate(web):
        docs.append({"id": f"w{i:03d}", "text": t + ("\n" + BOILER if i % 10 == 0 else ""),
                     "url": f"https://news{i % 7}.com/a/{i}", "quality_score": rng.random()})
    for i, t in enumerate(books):
        docs.append({"id": f"g{i:03d}", "text": t, "url": None, "quality_score": 0.5})
    for i in range(8):
        edited = books[i]
        while edited.split() == books[i].split():
            edited = mutate(books[i], 0.01, rng, gutenberg_words())
        docs.append({"id": f"n{i:03d}", "text": edited, "url": f"https://mirror.org/{i}", "quality_score": 0.1})
    for i in range(5):
        docs.append({"id": f"x{i:03d}", "text": web[21 + i], "url": f"https://copy.org/{i}", "quality_score": 0.0})
        docs.append({"id": f"u{i:03d}", "text": books[20 + i] + " and a different ending",
                     "url": f"HTTPS://News{(30 + i) % 7}.com/a/{30 + i}/?utm_source=x", "quality_score": 0.0})
    for i in range(2):
        docs.append({"id": f"t{i:03d}", "text": books[30 + i] + "\n" + tofu[i]["question"] + " " + tofu[i]["answer"],
                     "url": None, "quality_score": 0.9})
    docs.append({"id": None, "text": "a row without an id", "url": None, "quality_score": None})
    rng.shuffle(docs)
    folder = tmp_path_factory.mktemp("dedup_flow_in")
    half = len(docs) // 2
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("url", pa.string()),
                        ("quality_score", pa.float64())])
    pq.write_table(pa.Table.from_pylist(docs[:half], schema), folder / "a.parquet")
    pq.write_table(pa.Table.from_pylist(docs[half:], schema), folder / "b.parquet")
    return folder, docs


def run(inputs_dir, out, **sets):
    bench = shared_file("unlearning", "tofu_forget01.json")
    sets = {"dedup.decontam.enabled": "true",
            "dedup.decontam.benchmarks": json.dumps({"tofu": {"path": str(bench), "field": ["question", "answer"]}}),
            "dedup.paragraph.expected_items": "100000", **sets}
    cfg = load_config(DedupFlowConfig, inputs=[str(inputs_dir)], output=str(out),
                      sets=[f"{k}={v}" for k, v in sets.items()])
    return dedup_flow(cfg)


def test_dedup_flow_end_to_end(inputs, tmp_path, prefect_harness):
    folder, docs = inputs
    out = tmp_path / "out"
    run(folder, out)
    data, rejected, quarantine = rows(out, "data"), rows(out, "rejected"), rows(out, "quarantine")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"] and len(data) + len(rejected) + len(quarantine) == len(docs)
    assert [q["error"] for q in quarantine] == ["no id"]
    by_reason = {}
    for r in rejected:
        by_reason.setdefault(r["reason"], set()).add(r["id"])
    assert by_reason["url"] == {f"u{i:03d}" for i in range(5)}  # same page as an earlier, better-scored one
    assert by_reason["exact"] == {f"x{i:03d}" for i in range(5)}
    assert by_reason["minhash"] == {f"n{i:03d}" for i in range(8)}
    assert by_reason["decontam"] == {"t000", "t001"}
    # documents left with under 50 characters once their repeated lines (blog templates) are gone
    assert all("duplicate paragraphs" in r["reason_detail"] for r in rejected if r["reason"] == "paragraph")
    kept_ids = {r["id"] for r in data}
    for r in rejected:
        if r["reason"] == "minhash":
            assert r["reason_detail"] in kept_ids and r["dup_cluster_size"] >= 2
    assert all(r["dup_cluster_id"] and r["dup_cluster_size"] >= 1 for r in data + rejected)  # every row keeps them
    assert sum(BOILER in r["text"].split("\n") for r in data) == 1
    assert stats["dedup"]["paragraph"]["paragraphs_removed"] >= 10
    assert stats["dedup"]["decontam"]["hits_per_benchmark"] == {"tofu": 2}
    assert stats["dedup"]["minhash"]["removed"] == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pipeline"] == "dedup" and manifest["status"] == "complete"

    # rerun: unchanged inputs and config reuse the stage; same output
    done = out / "_work" / "dedup" / "done.json"
    mtime = done.stat().st_mtime_ns
    run(folder, out)
    assert done.stat().st_mtime_ns == mtime
    assert rows(out, "data") == data and rows(out, "rejected") == rejected

    # two workers: the same rows, the same order
    out2 = tmp_path / "out2"
    run(folder, out2, **{"execution.workers": "2"})
    assert rows(out2, "data") == data and rows(out2, "rejected") == rejected


def test_stages_can_be_switched_off(inputs, tmp_path, prefect_harness):
    folder, docs = inputs
    out = tmp_path / "out"
    run(folder, out, **{"dedup.paragraph.enabled": "false", "dedup.minhash.enabled": "false",
                        "dedup.decontam.action": "flag"})
    data, rejected = rows(out, "data"), rows(out, "rejected")
    assert {r["reason"] for r in rejected} == {"url", "exact"}
    flagged = {r["id"] for r in data if r["contaminated_by"]}
    assert flagged == {"t000", "t001"}
    assert {f"n{i:03d}" for i in range(8)} <= {r["id"] for r in data}


def test_bad_config_and_input_are_clear_errors(tmp_path):
    from corpora.readers import InputError
    from flows.config import ConfigError
    from flows.dedup import preflight

    with pytest.raises(ConfigError, match="dedup.minhash.num_band"):
        load_config(DedupFlowConfig, sets=["dedup.minhash.num_band=3"])
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"body": ["no text"]}), p)
    with pytest.raises(InputError, match="x.parquet: no 'id' column"):
        preflight(load_config(DedupFlowConfig, inputs=[str(p)]))
    with pytest.raises(ValueError, match="exceeds max_memory"):
        load_config(DedupFlowConfig, sets=["dedup.paragraph.expected_items=1000000000"]).dedup.check()


def test_config_file_mirrors_the_defaults():
    cfg_file = Path(__file__).resolve().parents[1] / "configs" / "dedup.yaml"
    assert yaml.safe_load(cfg_file.read_text()) == yaml.safe_load(defaults_yaml(DedupFlowConfig))


def test_dolma_flow_runs_dedup_after_the_filters(tmp_path, prefect_harness):
    from flows.dolma import DolmaConfig, dolma_flow

    out = tmp_path / "dolma"
    dolma_flow(load_config(DolmaConfig, output=str(out)))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"]
    assert list(stats["dedup"]) == ["url", "exact", "paragraph", "minhash"]
    data, rejected = rows(out, "data"), rows(out, "rejected")
    kinds = {}
    for r in rejected:
        kinds.setdefault(r["reason"], set()).add(json.loads(r["metadata"])["kind"])
    assert kinds["exact"] | kinds["url"] >= {"exact_duplicate"}
    assert "near_duplicate" in kinds["minhash"]
    assert stats["dedup"]["minhash"]["removed"] == sum(r["reason"] == "minhash" for r in rejected)
    assert all(r["dup_cluster_id"] and r["dup_cluster_size"] >= 1 for r in data)
    kept = {r["id"] for r in data}
    assert all(r["reason_detail"] in kept for r in rejected if r["reason"] == "minhash")


def test_empty_results_are_results(tmp_path, prefect_harness):
    """No document reaches dedup (an empty Parquet; every row unusable): the run publishes what it has."""
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), empty / "e.parquet")
    res = dedup_flow(load_config(DedupFlowConfig, inputs=[str(empty)], output=str(tmp_path / "o1")))
    assert res["stats"]["invariant"] == {"records_read": 0, "rows_data": 0, "rows_rejected": 0,
                                         "rows_quarantine": 0, "holds": True}
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array([None, None], pa.string())}), bad / "b.parquet")
    res = dedup_flow(load_config(DedupFlowConfig, inputs=[str(bad)], output=str(tmp_path / "o2")))
    inv = res["stats"]["invariant"]
    assert inv["holds"] and inv["rows_quarantine"] == 2 and inv["rows_data"] == 0
    assert len(rows(tmp_path / "o2", "quarantine")) == 2


def test_text_not_a_string_is_quarantined_and_schema_clash_names_the_file(tmp_path, prefect_harness):
    from corpora.readers import InputError
    from flows.dedup import preflight

    folder = tmp_path / "in"
    folder.mkdir()
    texts = distinct_docs(4, seed=9, min_words=60, max_words=80)
    pq.write_table(pa.table({"id": ["a0", "a1"], "text": texts[:2]}), folder / "a.parquet")
    pq.write_table(pa.table({"id": ["b0", "b1"], "text": [7, 8]}), folder / "b.parquet")  # text as int
    res = dedup_flow(load_config(DedupFlowConfig, inputs=[str(folder)], output=str(tmp_path / "out")))
    inv = res["stats"]["invariant"]
    assert inv["holds"] and inv["records_read"] == 4 and inv["rows_data"] == 2 and inv["rows_quarantine"] == 2
    q = rows(tmp_path / "out", "quarantine")
    assert {(Path(r["file"]).name, r["location"], r["error"]) for r in q} == {
        ("b.parquet", "row 0", "text is int, not a string"), ("b.parquet", "row 1", "text is int, not a string")}
    # columns that cannot be merged: the error names the file
    clash = tmp_path / "clash"
    clash.mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["x"], "score": [1.5]}), clash / "a.parquet")
    pq.write_table(pa.table({"id": ["b"], "text": ["y"], "score": pa.array([[1]], pa.list_(pa.int64()))}),
                   clash / "b.parquet")
    with pytest.raises(InputError, match=r"b\.parquet: its columns do not fit those of .*a\.parquet"):
        preflight(load_config(DedupFlowConfig, inputs=[str(clash)]))
    with pytest.raises(InputError, match=r"b\.parquet"):
        dedup_flow(load_config(DedupFlowConfig, inputs=[str(clash)], output=str(tmp_path / "o2")))


def test_every_reader_input_is_accepted(tmp_path, prefect_harness):
    """JSONL (plain, .gz, .zst), WARC and text folders go through the readers into staged Parquet, their bad
    records quarantined and counted; a rerun reuses the staged parts and gives byte-identical shards."""
    import gzip

    import zstandard

    texts = distinct_docs(9, seed=11, min_words=60, max_words=80)
    folder = tmp_path / "in"
    (folder / "notes").mkdir(parents=True)
    lines = [json.dumps({"id": f"j{i}", "text": t}) for i, t in enumerate(texts[:3])]
    (folder / "a.jsonl").write_text("\n".join(lines + ['{"id": "bad", "text": ']) + "\n")
    (folder / "b.jsonl.gz").write_bytes(gzip.compress((json.dumps({"id": "g0", "text": texts[3]}) + "\n").encode()))
    (folder / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        (json.dumps({"id": "z0", "text": texts[4]}) + "\n" + json.dumps({"id": "z1", "text": texts[0]}) + "\n")
        .encode()))
    (folder / "notes" / "n0.txt").write_text(texts[5])
    (folder / "notes" / "n1.txt").write_text(texts[6])
    pq.write_table(pa.table({"id": ["p0"], "text": [texts[7]]}), folder / "d.parquet")
    body = f"<html><body><article><p>{texts[8]}</p></article></body></html>".encode()
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    warc = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\nWARC-Target-URI: http://e.org/\r\n"
            b"Content-Type: application/http; msgtype=response\r\nContent-Length: " + str(len(http)).encode()
            + b"\r\n\r\n" + http + b"\r\n\r\n")
    (folder / "e.warc").write_bytes(warc)
    out = tmp_path / "out"
    res = dedup_flow(load_config(DedupFlowConfig, inputs=[str(folder)], output=str(out)))
    inv = res["stats"]["invariant"]
    assert inv["holds"] and inv["rows_quarantine"] == 1  # the cut JSON line
    data, rejected = rows(out, "data"), rows(out, "rejected")
    ids = {r["id"] for r in data + rejected}
    assert {"j0", "j1", "j2", "g0", "z0", "z1", "p0"} <= ids and len(data) + len(rejected) == inv["records_read"] - 1
    assert [r["reason"] for r in rejected] == ["exact"] and rejected[0]["id"] == "z1"  # z1 repeats j0
    assert any(r["url"] == "http://e.org/" for r in data) and any(r["text"] == texts[5] for r in data)  # WARC, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["inputs"]) == 7
    staged = sorted((out / "_work" / "inputs").glob("*/kept/part-*.parquet"))
    assert len(staged) == 6 and all(p.stat().st_size for p in staged)  # every input but the Parquet one
    mtimes = [p.stat().st_mtime_ns for p in staged]
    dedup_flow(load_config(DedupFlowConfig, inputs=[str(folder)], output=str(out)))
    assert json.loads((out / "manifest.json").read_text())["outputs"] == manifest["outputs"]
    assert [p.stat().st_mtime_ns for p in staged] == mtimes  # unchanged inputs are not converted again
