"""Damaged inputs (issue 13): every loss is a quarantine row with a reason, and a loss of more than one record
says how many (`lost_count`: N, or None when unknowable) so stats can sum it. Files are real compressed bytes, cut
or corrupted by hand."""
import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora.readers import LostRecords, lost_count, read_records
from corpora.records import BadRecord, Record

LINES = b"".join(json.dumps({"id": str(i), "text": f"document number {i} " * 20}).encode() + b"\n"
                 for i in range(2000))


def _split(path):
    items = list(read_records(path))
    return ([r for r in items if isinstance(r, Record)], [r for r in items if isinstance(r, BadRecord)])


def _assert_cut(good, bad):
    """Whole records before the cut kept, in order; one row for the rest, count unknown."""
    assert [r.id for r in good] == [str(i) for i in range(len(good))]
    assert len(bad) == 1 and isinstance(bad[0], LostRecords) and lost_count(bad[0]) is None
    assert f"unknown number of records after line {len(good)}" in bad[0].error
    assert "Unterminated string" not in bad[0].error


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.97])
def test_truncated_zstd_is_reported_not_silent(tmp_path, frac):
    import zstandard

    data = zstandard.ZstdCompressor().compress(LINES)
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(data[: int(len(data) * frac)])
    good, bad = _split(p)
    _assert_cut(good, bad)
    assert "truncated" in bad[0].error


def test_streamed_zstd_cut_and_multi_frame(tmp_path):
    import zstandard

    cobj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    data = b"".join(cobj.compress(LINES[i:i + 5000]) for i in range(0, len(LINES), 5000)) + cobj.flush()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(data[: len(data) // 2])
    good, bad = _split(cut)
    assert 0 < len(good) < 2000
    _assert_cut(good, bad)
    two = tmp_path / "two.jsonl.zst"  # pzstd / zstdmt write several frames: all are read
    two.write_bytes(data + data)
    good, bad = _split(two)
    assert len(good) == 4000 and not bad


def test_truncated_gzip_says_the_tail_is_lost(tmp_path):
    data = gzip.compress(LINES)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    good, bad = _split(p)
    assert 0 < len(good) < 2000
    _assert_cut(good, bad)


def test_parquet_without_text_column_counts_its_rows(tmp_path):
    p = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": [f"x{i}" for i in range(10)]}), p)
    good, bad = _split(p)
    assert not good and len(bad) == 1
    assert lost_count(bad[0]) == 10 and "10 records lost" in bad[0].error
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really")
    (row,) = list(read_records(garbage))
    assert lost_count(row) is None and "unknown number of records" in row.error


def test_bom_and_crlf_are_accepted(tmp_path):
    p = tmp_path / "windows.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "first"}\r\n{"id": "b", "text": "second"}\r\n\r\n')
    good, bad = _split(p)
    assert [(r.id, r.text) for r in good] == [("a", "first"), ("b", "second")] and not bad


def test_lone_surrogate_is_quarantined_in_the_reader(tmp_path):
    p = tmp_path / "sur.jsonl"
    p.write_bytes(b'{"id": "a", "text": "bad \\ud800 x"}\n'
                  b'{"id": "b", "text": "pair \\ud83d\\ude00 is fine"}\n'
                  b'{"id": "c", "text": "t", "meta": {"k": ["\\udfff"]}}\n')
    good, bad = _split(p)
    assert [r.id for r in good] == ["b"] and good[0].text == "pair \U0001F600 is fine"
    assert [b.location for b in bad] == ["line 1", "line 3"]
    assert all("lone UTF-16 surrogate" in b.error for b in bad)
    assert "field 'text'" in bad[0].error and "meta" in bad[1].error
    for r in good:  # what the reader lets through is encodable
        r.text.encode("utf-8"), r.metadata_json().encode("utf-8")


def test_deep_nesting_costs_one_row(tmp_path):
    p = tmp_path / "deep.jsonl"
    p.write_bytes(b'{"id": "a", "text": "ok"}\n'
                  b'{"id": "b", "text": "x", "m": ' + b"[" * 20000 + b"]" * 20000 + b"}\n"
                  b'{"id": "c", "text": "x", "m": ' + b"[" * 500 + b"]" * 500 + b"}\n"
                  b'{"id": "d", "text": "ok"}\n')
    good, bad = _split(p)
    assert [r.id for r in good] == ["a", "d"]
    assert [b.location for b in bad] == ["line 2", "line 3"] and all("nested" in b.error for b in bad)


def test_any_exception_in_a_line_costs_one_row(tmp_path, monkeypatch):
    import corpora.readers as readers

    real = readers.record_from_mapping

    def flaky(obj, *a, **k):
        if obj.get("id") == "boom":
            raise KeyError("something unforeseen")
        return real(obj, *a, **k)

    monkeypatch.setattr(readers, "record_from_mapping", flaky)
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "boom", "text": "x"}\n{"id": "c", "text": "ok"}\n')
    good, bad = _split(p)
    assert [r.id for r in good] == ["a", "c"]
    assert len(bad) == 1 and bad[0].location == "line 2" and "KeyError" in bad[0].error


# --- WARC -----------------------------------------------------------------------------------------------------

WORDS = ["river", "mountain", "library", "engine", "garden", "window", "market", "season", "letter", "island",
         "teacher", "bridge", "harvest", "station", "picture", "history", "science", "evening", "village", "ocean"]


def _warc(gz: bool, n: int = 22, seed: str = ""):
    """A WARC of n HTML responses with distinct text (trafilatura drops text it has already seen in the process);
    returns the bytes and each record's start offset."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    offsets = []
    for i in range(n):
        rnd = random.Random(f"{seed}-{gz}-{i}")
        paras = "".join("<p>" + " ".join(rnd.choice(WORDS) for _ in range(40)).capitalize() + ".</p>" for _ in range(5))
        html = f"<html><head><title>Page {i}</title></head><body><article><h1>Heading {i}</h1>{paras}</article></body></html>"
        hh = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        offsets.append(buf.tell())
        w.write_record(w.create_warc_record(f"http://example.org/{i}", "response", payload=io.BytesIO(html.encode()),
                                            http_headers=hh))
    return buf.getvalue(), offsets


def test_warc_intact(tmp_path):
    data, _ = _warc(gz=True, seed=tmp_path.name)
    p = tmp_path / "ok.warc.gz"
    p.write_bytes(data)
    good, bad = _split(p)
    assert len(good) == 22 and not bad


def test_warc_gz_corrupt_record_is_skipped_not_the_rest(tmp_path):
    data, offs = _warc(gz=True, seed=tmp_path.name)
    bad_bytes = bytearray(data)
    mid = (offs[4] + offs[5]) // 2  # inside record 5's gzip member
    for k in range(mid, mid + 30):
        bad_bytes[k] ^= 0x55
    p = tmp_path / "corrupt.warc.gz"
    p.write_bytes(bytes(bad_bytes))
    good, bad = _split(p)
    assert [r.url for r in good] == [f"http://example.org/{i}" for i in range(22) if i != 4]
    assert len(bad) == 1 and lost_count(bad[0]) == 0
    assert bad[0].location == f"byte {offs[4]}" and "corrupt gzip member" in bad[0].error
    assert bad[0].error.isprintable()  # text, not raw gzip bytes


@pytest.mark.parametrize("gz", [True, False])
def test_warc_truncated_last_record_is_flagged(tmp_path, gz):
    data, offs = _warc(gz=gz, seed=tmp_path.name)
    p = tmp_path / ("cut.warc.gz" if gz else "cut.warc")
    p.write_bytes(data[: offs[-1] + (len(data) - offs[-1]) // 2])
    good, bad = _split(p)
    assert len(good) == 21 and all(r.url != "http://example.org/21" for r in good)
    assert len(bad) == 1 and lost_count(bad[0]) is None
    assert "ends inside a WARC record" in bad[0].error and "unknown number of records" in bad[0].error


def test_warc_bad_header_or_length_skips_to_the_next_record(tmp_path):
    data, offs = _warc(gz=False, seed=tmp_path.name)
    garbage = bytearray(data)
    garbage[offs[4]:offs[4] + 8] = b"GARBAGE\x00"
    p = tmp_path / "garbage.warc"
    p.write_bytes(bytes(garbage))
    good, bad = _split(p)
    assert len(good) == 21 and len(bad) == 1 and "not a WARC record header" in bad[0].error
    assert bad[0].error.isprintable()
    rec5 = data[offs[4]:offs[5]].replace(b"Content-Length: ", b"Content-Length: 9", 1)
    p = tmp_path / "length.warc"
    p.write_bytes(data[:offs[4]] + rec5 + data[offs[5]:])
    good2, bad2 = _split(p)
    assert len(good2) == 21 and len(bad2) == 1 and "runs past the next record" in bad2[0].error


def test_reader_step_writes_lost_counts(tmp_path):
    """The staging reader sums `lost_count` into read.json (-> done.json): known records, and unknown-size losses."""
    from corpora.staging import StagedInput, TaskLayout
    from filters.steps import InputReaderStep

    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": [f"x{i}" for i in range(10)]}), wrong)
    cut = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(LINES)
    cut.write_bytes(data[: len(data) // 2])
    items = tuple(StagedInput.from_path(p) for p in (wrong, cut))
    layout = TaskLayout(str(tmp_path / "staging"), items, "cfg")
    step = InputReaderStep(layout)
    reads = []
    for rank in range(2):
        docs = list(step.run(rank=rank))
        reads.append((len(docs), json.loads((layout.dir(rank) / "read.json").read_text())))
    assert reads[0] == (0, {"records": 1, "quarantined": 1, "lost_records": 10, "lost_unknown": 0})
    n, read = reads[1]
    assert 0 < n < 2000 and read == {"records": n + 1, "quarantined": 1, "lost_records": 0, "lost_unknown": 1}


def test_warc_text_does_not_depend_on_what_the_process_read_before(tmp_path):
    """Trafilatura's in-process dedup is off: the same WARC read again in one process gives the same records (with
    it on, segments seen more than twice are dropped: the third read loses pages)."""
    data, _ = _warc(gz=True, seed="same-twice")
    p = tmp_path / "ok.warc.gz"
    p.write_bytes(data)
    reads = [[r.text for r in _split(p)[0]] for _ in range(4)]
    assert len(reads[0]) == 22 and all(r == reads[0] for r in reads)


def test_warc_record_with_a_damaged_type_is_quarantined_not_skipped(tmp_path):
    """Found by bench/faults.py: a flipped byte in `WARC-Type: response` made the record vanish without a row."""
    data, offsets = _warc(gz=False, seed="type")
    at = data.index(b"WARC-Type: response", offsets[2]) + len("WARC-Type: respons")
    p = tmp_path / "t.warc"
    p.write_bytes(data[:at] + b"\x15" + data[at + 1:])
    good, bad = _split(p)
    assert len(good) == 21 and len(bad) == 1 and "unknown WARC-Type" in bad[0].error


def test_warc_gz_corrupt_member_then_damaged_header_is_an_unknown_loss(tmp_path):
    """Record 5's member is corrupt and record 6's gzip magic is damaged: reading resumes at record 7, and the one
    quarantine row says its byte range may have held more than one record (unknown loss), never two records under
    one ordinary row."""
    data, offs = _warc(gz=True, seed=tmp_path.name)
    b = bytearray(data)
    mid = (offs[4] + offs[5]) // 2
    for k in range(mid, mid + 30):
        b[k] ^= 0x55
    b[offs[5]] ^= 0xFF  # ID1 of record 6's member header
    p = tmp_path / "two.warc.gz"
    p.write_bytes(bytes(b))
    good, bad = _split(p)
    assert [r.url for r in good] == [f"http://example.org/{i}" for i in range(22) if i not in (4, 5)]
    assert len(bad) == 1 and lost_count(bad[0]) is None
    assert f"bytes {offs[4]}-{offs[6] - 1}" in bad[0].error and "unknown number of records" in bad[0].error


def test_warc_damaged_record_then_damaged_version_line_costs_two_rows(tmp_path):
    """Found by bench/faults.py: after a record without Content-Length, the next record's "WARC/1.0" line was
    damaged too, and resyncing on the next version line skipped it without a row."""
    data, offs = _warc(gz=False, seed=tmp_path.name)
    b = bytearray(data)
    head = bytes(b[offs[4]:offs[5]])
    i = head.lower().find(b"content-length")
    b[offs[4] + i] = ord("X")  # record 5 loses its Content-Length
    b[offs[5] + 4] = ord("#")  # record 6: "WARC#1.0"
    p = tmp_path / "two.warc"
    p.write_bytes(bytes(b))
    good, bad = _split(p)
    assert [r.url for r in good] == [f"http://example.org/{i}" for i in range(22) if i not in (4, 5)]
    assert [x.location for x in bad] == [f"byte {offs[4]}", f"byte {offs[5]}"]
