"""Token-id shards for trainers: Parquet documents (a `mix` output's data/, or any of our outputs) -> `format:
datatrove` (below) or `format: megatron` (Megatron-LM's .bin/.idx through megatron-core: corpora/tokenized_megatron.py).

datatrove's tokenized format is written by datatrove's own `DocumentTokenizer` (datatrove/pipeline/tokens/
tokenizer.py), read by nanotron and by datatrove's `DatatroveFolderDataset`.

Per input shard `part-NNNNN.parquet`, one `NNNNN_unshuffled.ds` (token ids, uint16 when the vocabulary fits, else
uint32), `.ds.index` (uint64 end offset of every document) and `.ds.metadata` (tokenizer, token count), written
with `shuffle_documents=False`: the documents keep the input's row order (the mix's seeded shuffle), every row is
one document (so a mix's `epoch` copies are all there) and the files sort in input order. EOS: `eos_token`
appended to every document by datatrove's post-processor (null: the tokenizer's own post-processor, SmolLM2's
adds nothing). The manifest (`tokenized.json`) has documents and tokens per file and per source.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from corpora.config import StrictModel


class TokenizedConfig(StrictModel):
    # datatrove: DocumentTokenizer's .ds files; megatron: megatron-core's indexed dataset (extra `megatron`). MosaicML
    # MDS is not offered: mosaicml-streaming 0.13 does not install next to our CPU torch (it pulls torch 2.14 + CUDA)
    format: Literal["datatrove", "megatron"] = "datatrove"
    megatron_prefix: str = "text_document"  # format megatron: <prefix>.bin/.idx (preprocess_data.py's naming)
    eos_token: str | None = "<|endoftext|>"  # appended after every document; null: none (tokenizer's own)
    text_field: str = "text"
    source_field: str = "source"  # tokens per value of this column in the manifest (absent column: one group)
    batch_size: int = Field(10_000, ge=1)  # documents per tokenizer batch (datatrove's batch_size)
    batch_rows: int = Field(8_192, ge=1)  # rows read from Parquet at once


def tokenizer_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    f = p / "tokenizer.json" if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(f"{p}: no tokenizer.json (give a HF tokenizer folder or its tokenizer.json)")
    return f


def _documents(file: Path, cfg: TokenizedConfig, sources: list, row_tokens: list, bad: list):
    from datatrove.data import Document

    pf = pq.ParquetFile(file)
    names = pf.schema_arrow.names
    if cfg.text_field not in names:
        raise ValueError(f"{file}: no column '{cfg.text_field}' (columns: {', '.join(names)})")
    cols = [c for c in (cfg.text_field, cfg.source_field, "id", "tokens") if c in names]
    row = 0
    for batch in pf.iter_batches(batch_size=cfg.batch_rows, columns=cols):
        d = batch.to_pydict()
        for i, text in enumerate(d[cfg.text_field]):
            if text is None:  # a row without text cannot be a document: counted, never silently dropped
                bad.append({"file": str(file), "location": f"row {row}", "error": "null text"})
                row += 1
                continue
            sources.append(d[cfg.source_field][i] if cfg.source_field in d else "(all)")
            row_tokens.append(d["tokens"][i] if "tokens" in d else None)
            yield Document(text=text, id=str(d["id"][i]) if "id" in d else f"{file.name}/{row}")
            row += 1


def tokenize_files(files: list[Path], out: Path, tokenizer: str | Path, cfg: TokenizedConfig) -> dict:
    """Tokenize each Parquet file (in order) into `out` in `cfg.format`; returns the manifest."""
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    tok_file = tokenizer_file(tokenizer)
    if cfg.format == "megatron":
        from corpora.tokenized_megatron import write_megatron

        return write_megatron(files, out, tok_file, cfg, _documents)
    out.mkdir(parents=True, exist_ok=True)
    per_file, per_source = [], defaultdict(lambda: {"documents": 0, "tokens": 0})
    bad: list[dict] = []
    mismatched = 0
    eos_id = None
    for rank, f in enumerate(files):
        step = DocumentTokenizer(str(out), tokenizer_name_or_path=str(tok_file), eos_token=cfg.eos_token,
                                 shuffle_documents=False, batch_size=cfg.batch_size, save_final_metadata=True)
        if cfg.eos_token is not None:
            eos_id = step.tokenizer.token_to_id(cfg.eos_token)
            if eos_id is None:
                raise ValueError(f"eos_token {cfg.eos_token!r} is not in the tokenizer {tok_file}")
        sources, row_tokens = [], []
        step.run(_documents(Path(f), cfg, sources, row_tokens, bad), rank=rank, world_size=len(files))
        name = f"{rank:05d}_unshuffled.ds"
        if not sources:  # datatrove writes nothing for an empty input
            per_file.append({"input": str(f), "file": None, "documents": 0, "tokens": 0})
            continue
        ends = np.fromfile(out / f"{name}.index", dtype="<u8")
        if len(ends) != len(sources):
            raise RuntimeError(f"{name}: {len(ends)} documents in the index, {len(sources)} rows read")
        lengths = np.diff(ends, prepend=0)
        extra = 0 if cfg.eos_token is None else 1
        for s, n, rt in zip(sources, lengths.tolist(), row_tokens):
            per_source[s]["documents"] += 1
            per_source[s]["tokens"] += n
            if rt is not None and n - extra != rt:
                mismatched += 1
        per_file.append({"input": str(f), "file": name, "documents": int(len(ends)), "tokens": int(ends[-1])})
    docs = sum(p["documents"] for p in per_file)
    tokens = sum(p["tokens"] for p in per_file)
    return {"format": "datatrove", "tokenizer": str(tok_file), "eos_token": cfg.eos_token, "eos_id": eos_id,
            "token_size": step.token_size, "documents": docs, "tokens": tokens,
            "tokens_without_eos": tokens - (docs if cfg.eos_token is not None else 0),
            "rows_token_mismatch": mismatched, "files": per_file,
            "sources": {k: dict(v) for k, v in sorted(per_source.items())}, "quarantine": bad}


def read_documents(folder: Path, token_size: int = 2) -> list[list[int]]:
    """Read every document back with the format's own reader, in file order; for tests and checks (all tokens in
    memory). A folder with Megatron .idx files: megatron-core's IndexedDataset; else datatrove's
    DatatroveFileDataset (positions from the index)."""
    from datatrove.utils.dataset import DatatroveFileDataset

    idx_files = sorted(Path(folder).glob("*.idx"))
    if idx_files:
        from corpora.tokenized_megatron import read_megatron_documents

        return [d for f in idx_files for d in read_megatron_documents(f.with_suffix(""))]
    docs: list[list[int]] = []
    for f in sorted(Path(folder).glob("*.ds")):
        n = f.stat().st_size // token_size
        if n < 2:
            raise ValueError(f"{f}: {n} tokens, too few to read as one window")
        ds = DatatroveFileDataset(str(f), seq_len=n - 1, token_size=token_size, return_positions=True)
        item = ds[0]
        ids, pos = item["input_ids"].tolist(), item["positions"].tolist()
        starts = [i for i, p in enumerate(pos) if p == 0] + [n]
        docs += [ids[a:b] for a, b in zip(starts, starts[1:])]
    return docs
