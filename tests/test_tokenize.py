"""`flows run tokenize` for real: a mix of the bundled sample with the SmolLM2 tokenizer, tokenized by datatrove's
DocumentTokenizer (and, `tokenized.format=megatron`, by megatron-core's IndexedDatasetBuilder), read back with the
format's own reader (datatrove's DatatroveFileDataset; megatron-core's IndexedDataset), detokenized and compared to
every Parquet row in order; total tokens equal the plan's delivered tokens (plus one EOS per document)."""
from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np

import pyarrow.parquet as pq
import pytest

from corpora.tokenized import TokenizedConfig, read_documents, tokenize_files


@pytest.fixture(scope="module")
def tokenizer():
    from generators.backends.local_models import ModelNotFound, dequantised_smollm2_dir

    try:
        return str(dequantised_smollm2_dir())
    except ModelNotFound as e:
        pytest.skip(f"SmolLM2 tokenizer not available: {e}")


needs_megatron = pytest.mark.skipif(importlib.util.find_spec("megatron") is None,
                                    reason="megatron-core not installed (optional extra `megatron`)")


@pytest.mark.parametrize("fmt", ["datatrove", pytest.param("megatron", marks=needs_megatron)])
def test_mix_then_tokenize_round_trip(tmp_path, prefect_harness, tokenizer, fmt):
    from tokenizers import Tokenizer

    from flows.mix import MixConfig, mix_flow
    from flows.tokenize import TokenizeConfig, tokenize_flow

    mix_out = tmp_path / "mix"
    mix_flow(MixConfig(output=str(mix_out), tokenizer={"path": tokenizer}, seed=7))
    res = tokenize_flow(TokenizeConfig(inputs=[str(mix_out)], output=str(tmp_path / "tok"),
                                       tokenizer={"path": tokenizer}, tokenized={"format": fmt}))
    m = res["manifest"]
    assert m["format"] == fmt
    rows = [r for f in sorted((mix_out / "data").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    plan = json.loads((mix_out / "plan.json").read_text())
    assert m["documents"] == len(rows) and m["tokens"] == plan["delivered_tokens"] + len(rows)
    assert m["matches_plan"] and m["rows_token_mismatch"] == 0
    docs = read_documents(tmp_path / "tok" / "tokenized")
    tok = Tokenizer.from_file(str(Path(tokenizer) / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    assert len(docs) == len(rows)
    for d, r in zip(docs, rows):  # every document, in the mix's order
        assert d[-1] == eos and len(d) - 1 == r["tokens"]
        assert tok.decode(d[:-1], skip_special_tokens=False) == tok.decode(
            tok.encode(r["text"], add_special_tokens=False).ids, skip_special_tokens=False)
    by = {}
    for r in rows:
        by[r["source"]] = by.get(r["source"], 0) + r["tokens"] + 1
    assert {k: v["tokens"] for k, v in m["sources"].items()} == by
    assert json.loads((tmp_path / "tok" / "stats.json").read_text())["invariant"]["holds"]


def test_no_eos_and_null_text_quarantined(tmp_path, tokenizer):
    import pyarrow as pa

    f = tmp_path / "part-00000.parquet"
    pq.write_table(pa.table({"text": ["hello world", None, "second doc"], "source": ["a", "a", "b"]}), f)
    m = tokenize_files([f], tmp_path / "out", tokenizer, TokenizedConfig(eos_token=None))
    assert m["documents"] == 2 and len(m["quarantine"]) == 1 and m["quarantine"][0]["location"] == "row 1"
    docs = read_documents(tmp_path / "out")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(tokenizer) / "tokenizer.json"))
    assert [tok.decode(d) for d in docs] == ["hello world", "second doc"]
    with pytest.raises(ValueError, match="no column 'body'"):
        tokenize_files([f], tmp_path / "o2", tokenizer, TokenizedConfig(text_field="body"))


@needs_megatron
def test_megatron_same_ids_as_datatrove_and_the_idx_layout(tmp_path, tokenizer):
    """The two formats hold the same ids for the same rows; the .idx is Megatron's MMIDIDX v1 layout, parsed here by
    hand from megatron/core/datasets/indexed_dataset.py (_IndexWriter.__enter__/write: header, version, dtype code,
    sequence count, document count, int32 lengths, int64 byte pointers, int64 document indices)."""
    import pyarrow as pa

    texts = ["hello world", "", "second doc", "é ü 漢字 emoji 🙂", "third " * 50]
    f1, f2 = tmp_path / "part-00000.parquet", tmp_path / "part-00001.parquet"
    pq.write_table(pa.table({"text": texts[:3], "source": ["a", "a", "b"]}), f1)
    pq.write_table(pa.table({"text": texts[3:], "source": ["b", "c"]}), f2)
    dt = tokenize_files([f1, f2], tmp_path / "dt", tokenizer, TokenizedConfig())
    mg = tokenize_files([f1, f2], tmp_path / "mg", tokenizer, TokenizedConfig(format="megatron"))
    a, b = read_documents(tmp_path / "dt"), read_documents(tmp_path / "mg")
    assert a == b and len(b) == 5 and b[1] == [mg["eos_id"]]  # an empty row is one document: its EOS
    assert {k: mg[k] for k in ("documents", "tokens", "sources")} == {k: dt[k] for k in ("documents", "tokens",
                                                                                          "sources")}
    assert [f["first_document"] for f in mg["files"]] == [0, 3]
    raw = (tmp_path / "mg" / "text_document.idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00" and struct.unpack("<Q", raw[9:17])[0] == 1
    assert raw[17] == 8  # DType.uint16: SmolLM2's 49,152 ids < 65,500 (DType.optimal_dtype)
    n_seq, n_doc = struct.unpack("<QQ", raw[18:34])
    assert (n_seq, n_doc) == (5, 6)
    off = 34
    lengths = np.frombuffer(raw, "<i4", n_seq, off)
    pointers = np.frombuffer(raw, "<i8", n_seq, off + 4 * n_seq)
    doc_idx = np.frombuffer(raw, "<i8", n_doc, off + 12 * n_seq)
    assert lengths.tolist() == [len(d) for d in b] and doc_idx.tolist() == list(range(6))
    assert pointers.tolist() == (np.concatenate([[0], np.cumsum(lengths)[:-1]]) * 2).tolist()
    ids = np.fromfile(tmp_path / "mg" / "text_document.bin", "<u2")
    assert ids.tolist() == [t for d in a for t in d]


@needs_megatron
def test_megatron_failure_leaves_no_index(tmp_path, tokenizer):
    import pyarrow as pa

    good, bad = tmp_path / "part-00000.parquet", tmp_path / "part-00001.parquet"
    pq.write_table(pa.table({"text": ["fine"]}), good)
    pq.write_table(pa.table({"body": ["no text column"]}), bad)
    with pytest.raises(ValueError, match="part-00001.parquet: no column 'text'"):
        tokenize_files([good, bad], tmp_path / "mg", tokenizer, TokenizedConfig(format="megatron"))
    assert not list((tmp_path / "mg").glob("text_document.*"))
