"""Megatron-LM's indexed dataset (`.bin`/`.idx`, "MMIDIDX" version 1) for `tokenize --set tokenized.format=megatron`,
written and read by megatron-core's own `megatron.core.datasets.indexed_dataset` (`IndexedDatasetBuilder`,
`IndexedDataset`; the optional extra `megatron`: `pip install megatron-core`).

As Megatron's tools/preprocess_data.py does (NVIDIA/Megatron-LM, Encoder.encode and Partition.process_json_file):
one document per row and one sequence per document (no sentence splitting: `sentence_lens == [len(ids)]`),
`builder.add_document(ids, [len(ids)])`, the token dtype `DType.optimal_dtype(vocab_size)` (uint16 below 65,500,
else int32), `builder.finalize(idx)`, the files named `<prefix>_text_document.bin/.idx`. Token ids come from the
very tokenizer object datatrove's `DocumentTokenizer` uses (its post-processor appends `eos_token` to every
document), so both formats hold the same ids. Differences from preprocess_data.py: Parquet input (not JSONL), EOS
from `tokenized.eos_token` (its `--append-eod` appends the tokenizer's `eod` only to non-empty documents; here every
row gets it, as datatrove does, so a row with empty text is one document of one token), and every input shard goes
into one `.bin/.idx` pair in input order (the mix's shuffle order, `epoch` copies included). Megatron's GPTDataset
shuffles documents again with its own seed at training time; the file order is the mix's.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

PREFIX = "text_document"


def _megatron():
    import warnings

    try:
        with warnings.catch_warnings():  # megatron.core warns that Transformer Engine/Apex are absent, deprecations
            warnings.simplefilter("ignore")
            from megatron.core.datasets import indexed_dataset
    except ImportError as e:
        raise ImportError("tokenized.format=megatron needs megatron-core (the optional extra `megatron`: "
                          f"pip install megatron-core): {e}") from e
    return indexed_dataset


def write_megatron(files: list[Path], out: Path, tokenizer, cfg, documents) -> dict:
    """Tokenize each Parquet file (in order) into `out/<prefix>_text_document.bin/.idx`; returns the manifest.
    `documents(file, cfg, sources, row_tokens, bad)` yields datatrove Documents (corpora/tokenized.py)."""
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    idx = _megatron()
    out.mkdir(parents=True, exist_ok=True)
    # the same tokenizer object (and EOS post-processor) as the datatrove format; nothing is written by it
    step = DocumentTokenizer(str(out), tokenizer_name_or_path=str(tokenizer), eos_token=cfg.eos_token,
                             shuffle_documents=False, batch_size=cfg.batch_size)
    tok = step.tokenizer
    eos_id = None
    if cfg.eos_token is not None:
        eos_id = tok.token_to_id(cfg.eos_token)
        if eos_id is None:
            raise ValueError(f"eos_token {cfg.eos_token!r} is not in the tokenizer {tokenizer}")
    dtype = idx.DType.optimal_dtype(tok.get_vocab_size())
    prefix = out / cfg.megatron_prefix
    builder = idx.IndexedDatasetBuilder(idx.get_bin_path(str(prefix)), dtype=dtype)
    per_file, per_source = [], defaultdict(lambda: {"documents": 0, "tokens": 0})
    bad: list[dict] = []
    mismatched, total_docs, extra = 0, 0, 0 if cfg.eos_token is None else 1
    ok = False
    try:
        for f in files:
            sources, row_tokens = [], []
            n_docs = n_tok = 0
            batch = []

            def flush():
                nonlocal n_docs, n_tok, mismatched
                for enc in tok.encode_batch([d.text for d in batch]):
                    ids = enc.ids
                    builder.add_document(ids, [len(ids)])
                    s, rt = sources[n_docs], row_tokens[n_docs]
                    per_source[s]["documents"] += 1
                    per_source[s]["tokens"] += len(ids)
                    if rt is not None and len(ids) - extra != rt:
                        mismatched += 1
                    n_docs += 1
                    n_tok += len(ids)
                batch.clear()

            for d in documents(Path(f), cfg, sources, row_tokens, bad):
                batch.append(d)
                if len(batch) >= cfg.batch_size:
                    flush()
            flush()
            per_file.append({"input": str(f), "file": f"{cfg.megatron_prefix}.bin" if n_docs else None,
                             "first_document": total_docs, "documents": n_docs, "tokens": n_tok})
            total_docs += n_docs
        ok = True
    finally:
        if ok:
            builder.finalize(idx.get_idx_path(str(prefix)))  # closes the .bin, writes the .idx
        else:  # no .idx for a half-written .bin: a failed run leaves nothing a trainer could take for whole
            builder.data_file.close()
            Path(idx.get_bin_path(str(prefix))).unlink(missing_ok=True)
    docs = sum(p["documents"] for p in per_file)
    tokens = sum(p["tokens"] for p in per_file)
    return {"format": "megatron", "prefix": str(prefix), "tokenizer": str(tokenizer), "eos_token": cfg.eos_token,
            "eos_id": eos_id, "dtype": np.dtype(dtype).name, "documents": docs, "tokens": tokens,
            "tokens_without_eos": tokens - (docs if cfg.eos_token is not None else 0),
            "rows_token_mismatch": mismatched, "files": per_file,
            "sources": {k: dict(v) for k, v in sorted(per_source.items())}, "quarantine": bad}


def read_megatron_documents(prefix: str | Path) -> list[list[int]]:
    """Every document back with megatron-core's own `IndexedDataset` (mmap), in file order; for tests and checks."""
    idx = _megatron()
    ds = idx.IndexedDataset(str(prefix), mmap=True)
    doc_idx = ds.document_indices
    docs = []
    for a, b in zip(doc_idx[:-1].tolist(), doc_idx[1:].tolist()):
        docs.append([t for s in range(a, b) for t in ds[s].tolist()])
    return docs
