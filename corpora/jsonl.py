"""The one reader of JSONL side files (id lists, anchors, replay tables, grades, QA sets, author tables, benchmarks).

`read_jsonl(path)` yields `(line_no, object)` for each non-blank line, line numbers counted from 1 over every line
(blank ones included), so a message can name the line a person opens in an editor. Lines are split on `\\n` only
(a trailing `\\r` is dropped, so `\\r\\n` files read the same; U+2028 and other characters `str.splitlines` would
split on stay inside their JSON string); a UTF-8 byte-order mark at the start of the file is skipped; the file is
read line by line (bytes already in memory, e.g. a decompressed replay file, are passed as `data`).

A bad line (not UTF-8, not JSON, or, with `objects=True`, a JSON value that is not an object) is a `JsonlError`
naming the file, the line and the reason in one line: raised (`errors="raise"`), or yielded in the object's place
(`errors="yield"`) for callers that quarantine bad lines with their reason and go on.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

_BOM = b"\xef\xbb\xbf"
_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
          type(None): "null"}
_BLANK = object()  # a blank line: skipped, still counted


class JsonlError(ValueError):
    """One line of a JSONL file that cannot be read: `path`, `line` (from 1), `reason`."""

    def __init__(self, path: str | Path, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}: line {line}: {reason}")


def read_jsonl(path: str | Path, *, data: bytes | None = None, objects: bool = True,
               errors: Literal["raise", "yield"] = "raise") -> Iterator[tuple[int, Any]]:
    """(line_no, value) per non-blank line of `path` (or of `data`, read as the content of `path`)."""
    if errors not in ("raise", "yield"):
        raise ValueError(f"errors must be 'raise' or 'yield', not {errors!r}")
    fh = io.BytesIO(data) if data is not None else open(path, "rb")
    with fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            value = _parse(path, n, raw, objects)
            if value is _BLANK:
                continue
            if isinstance(value, JsonlError) and errors == "raise":
                raise value
            yield n, value



def _parse(path: str | Path, n: int, raw: bytes, objects: bool) -> Any:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return JsonlError(path, n, f"not UTF-8 text (byte {e.start + 1} of the line)")
    if not line.strip():
        return _BLANK
    try:
        value = json.loads(line)
    except json.JSONDecodeError as e:
        return JsonlError(path, n, f"invalid JSON: {e.msg}")
    if objects and not isinstance(value, dict):
        return JsonlError(path, n, f"expected a JSON object, got {_KINDS.get(type(value), type(value).__name__)}")
    return value
