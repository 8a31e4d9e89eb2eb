"""The one JSONL side-file reader (`corpora.jsonl.read_jsonl`): BOM, CRLF, blank lines, bad lines named by line."""
from __future__ import annotations

import pytest

from corpora.jsonl import JsonlError, read_jsonl


def _write(tmp_path, content: bytes, name: str = "side.jsonl"):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def test_bom_crlf_and_blank_lines_keep_line_numbers(tmp_path):
    p = _write(tmp_path, b'\xef\xbb\xbf{"id": "a"}\r\n\r\n   \r\n{"id": "b", "t": "x\\u2028y"}\r\n\n{"id": "c"}')
    assert list(read_jsonl(p)) == [(1, {"id": "a"}), (4, {"id": "b", "t": "x\u2028y"}), (6, {"id": "c"})]


def test_raw_line_separator_inside_a_string_is_not_a_line_break(tmp_path):
    p = _write(tmp_path, '{"t": "a\u2028b\u0085c"}\n{"t": 2}\n'.encode())
    assert [n for n, _ in read_jsonl(p)] == [1, 2]
    assert next(read_jsonl(p))[1]["t"] == "a\u2028b\u0085c"


def test_bad_json_names_file_and_line(tmp_path):
    p = _write(tmp_path, b'{"id": 1}\n\n{"id": 2,\n')
    rows = read_jsonl(p)
    assert next(rows) == (1, {"id": 1})
    with pytest.raises(JsonlError) as e:
        next(rows)
    assert e.value.line == 3 and str(e.value).startswith(f"{p}: line 3: invalid JSON: ")
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_non_object_line(tmp_path):
    p = _write(tmp_path, b'{"id": 1}\n[1, 2]\n"s"\n')
    with pytest.raises(JsonlError, match=r"line 2: expected a JSON object, got an array$"):
        list(read_jsonl(p))
    assert [v for _, v in read_jsonl(p, objects=False)] == [{"id": 1}, [1, 2], "s"]


def test_not_utf8_names_the_line(tmp_path):
    p = _write(tmp_path, b'{"id": 1}\n{"id": "\xff"}\n')
    with pytest.raises(JsonlError, match=r"line 2: not UTF-8 text \(byte 9 of the line\)"):
        list(read_jsonl(p))


def test_yield_mode_keeps_order_and_goes_on(tmp_path):
    p = _write(tmp_path, b'{"a": 1}\nnope\n7\n{"a": 2}\n')
    got = list(read_jsonl(p, errors="yield"))
    assert [n for n, _ in got] == [1, 2, 3, 4]
    assert got[0][1] == {"a": 1} and got[3][1] == {"a": 2}
    assert isinstance(got[1][1], JsonlError) and "invalid JSON" in got[1][1].reason
    assert isinstance(got[2][1], JsonlError) and got[2][1].reason == "expected a JSON object, got a number"


def test_bytes_in_memory_and_empty_file(tmp_path):
    assert list(read_jsonl("x.jsonl.gz", data=b'\xef\xbb\xbf{"k": 1}\r\n')) == [(1, {"k": 1})]
    assert list(read_jsonl(_write(tmp_path, b""))) == []
    with pytest.raises(ValueError, match="errors must be"):
        list(read_jsonl("x", data=b"", errors="skip"))
