"""`flows run tokenize` for real: a mix of the bundled sample with the SmolLM2 tokenizer, tokenized by datatrove's
DocumentTokenizer, read back with datatrove's own DatatroveFileDataset, detokenized and compared to every Parquet
row in order; total tokens equal the plan's delivered tokens (plus one EOS per document)."""
from __future__ import annotations

import json
from pathlib import Path

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


def test_mix_then_tokenize_round_trip(tmp_path, prefect_harness, tokenizer):
    from tokenizers import Tokenizer

    from flows.mix import MixConfig, mix_flow
    from flows.tokenize import TokenizeConfig, tokenize_flow

    mix_out = tmp_path / "mix"
    mix_flow(MixConfig(output=str(mix_out), tokenizer={"path": tokenizer}, seed=7))
    res = tokenize_flow(TokenizeConfig(inputs=[str(mix_out)], output=str(tmp_path / "tok"),
                                       tokenizer={"path": tokenizer}))
    m = res["manifest"]
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
