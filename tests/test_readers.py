"""Readers: every format, and malformed inputs quarantined with reasons while the rest is read."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora.readers import FieldMap, InputError, expand_inputs, read_records
from corpora.records import BadRecord, Record
from tests.conftest import shared_path


def _split(items):
    good = [r for r in items if isinstance(r, Record)]
    bad = [r for r in items if isinstance(r, BadRecord)]
    return good, bad


def test_jsonl_bad_lines_are_quarantined_with_line_numbers(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_bytes(
        b'{"id": "a", "text": "first"}\n'
        b'{"id": "b", "text": "broken\n'
        b'{"id": "c", "text": "bad \xff\xfe utf8"}\n'
        b'{"id": "d", "body": "no text field"}\n'
        b'[1, 2]\n'
        b'{"text": "no id", "metadata": {"url": "https://x.org/a"}}\n'
    )
    good, bad = _split(list(read_records(p)))
    assert [r.id for r in good][0] == "a" and len(good) == 2
    assert good[1].url == "https://x.org/a" and len(good[1].id) == 32  # content hash id
    reasons = {b.location: b.error for b in bad}
    assert reasons["line 2"].startswith("invalid JSON")
    assert reasons["line 3"].startswith("invalid UTF-8")
    assert reasons["line 4"] == "missing text field 'text'"
    assert reasons["line 5"].startswith("expected a JSON object")


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    full = tmp_path / "full.jsonl.gz"
    with gzip.open(full, "wt") as fh:
        for i in range(2000):
            fh.write(json.dumps({"id": str(i), "text": f"document number {i} " * 20}) + "\n")
    data = full.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    good, bad = _split(list(read_records(cut)))
    assert 0 < len(good) < 2000
    assert len(bad) == 1 and "truncated" in bad[0].error and bad[0].location.startswith("after line")


def test_zstd_jsonl(tmp_path):
    import zstandard

    p = tmp_path / "d.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b'{"id": "z", "text": "zstd text"}\n'))
    good, bad = _split(list(read_records(p)))
    assert [r.text for r in good] == ["zstd text"] and not bad


def test_empty_file_and_wrong_schema_parquet(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert [b.error for b in read_records(empty)] == ["empty file: no records"]
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": ["x"], "n": [1]}), wrong)
    (bad,) = list(read_records(wrong))
    assert isinstance(bad, BadRecord) and "no column 'text'" in bad.error and "body" in bad.error
    right = tmp_path / "right.parquet"
    pq.write_table(pa.table({"content": ["hello"], "doc": ["d1"]}), right)
    (rec,) = list(read_records(right, FieldMap(text_field="content", id_field="doc")))
    assert rec.id == "d1" and rec.text == "hello"
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert "not a readable Parquet" in next(iter(read_records(garbage))).error


def test_text_folder_and_expand_inputs(tmp_path):
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text("Book A text.")
    (tmp_path / "books" / "b.txt").write_bytes(b"\xff\xfe bad")
    files = expand_inputs([tmp_path / "books"])
    assert [f.name for f in files] == ["a.txt", "b.txt"]
    (a,) = list(read_records(files[0]))
    assert a.id == "a" and a.source == "books"
    assert isinstance(next(iter(read_records(files[1]))), BadRecord)
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([tmp_path / "nope"])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(InputError, match="unsupported"):
        expand_inputs([tmp_path / "x.csv"])


def test_warc_html_responses_become_main_text():
    warc = shared_path("data", "web", "dolma_sample-0000.warc.gz")
    items = list(read_records(warc))
    good, bad = _split(items)
    assert len(good) >= 10
    assert all(r.url and r.url.startswith("http") for r in good)
    assert all(r.created and r.id for r in good)
    assert all("<html" not in r.text.lower() and len(r.text) > 20 for r in good)
    for b in bad:
        assert b.error  # every skipped record says why


@pytest.mark.parametrize("name, body", [("ws.jsonl", b"\n  \n\t\r\n"), ("ws.txt", b"   \n\n"),
                                        ("bom.jsonl", b"\xef\xbb\xbf\n\n")])
def test_whitespace_only_file_is_one_empty_file_row_like_an_empty_file(tmp_path, name, body):
    p = tmp_path / name
    p.write_bytes(body)
    got = list(read_records(p))
    assert [(type(b), b.error) for b in got] == [(BadRecord, "empty file: no records")]
