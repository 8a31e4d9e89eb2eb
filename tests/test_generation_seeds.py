"""Seed reading of the generator flow: records under file-level quarantine rows are counted as lost."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from flows.generation import load_seeds
from generators.contract import GeneratorConfig


def test_seed_losses_are_counted_per_input(tmp_path):
    lines = b"".join(json.dumps({"id": f"s{i}", "text": f"seed text number {i} " * 5}).encode() + b"\n"
                     for i in range(40))
    cut = gzip.compress(lines)[:-60]  # the stream ends early: an unknown number of records after some line
    (tmp_path / "cut.jsonl.gz").write_bytes(cut)
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(10)], "body": ["x"] * 10}), tmp_path / "notext.parquet")
    seeds, bad, per_input = load_seeds.fn([str(tmp_path / "cut.jsonl.gz"), str(tmp_path / "notext.parquet")],
                                          GeneratorConfig())
    by = {p["path"].rsplit("/", 1)[1]: p for p in per_input}
    assert by["notext.parquet"]["lost_records"] == 10 and by["notext.parquet"]["lost_unknown"] == 0
    assert by["cut.jsonl.gz"]["lost_unknown"] == 1 and 0 < len(seeds) < 40
    assert len(bad) == 2
