"""`flows run tokenize --input <mix output>`: token-id shards a trainer reads without re-tokenizing (`tokenized.format`:
datatrove's tokenized format, written by datatrove's DocumentTokenizer, or Megatron-LM's .bin/.idx, written by
megatron-core's IndexedDatasetBuilder; see corpora/tokenized.py). The input is a run's
output folder (its data/ shards) or Parquet files/folders; the tokenizer is the mix's (SmolLM2-135M's unless
`tokenizer.path`), so the tokens equal the plan's delivered tokens plus one EOS per document."""
from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.atomic import atomic_write_json
from corpora.mix_count import TokenizerConfig
from corpora.readers import expand_inputs
from corpora.tokenized import TokenizedConfig, tokenize_files
from flows.config import RunConfig
from flows.registry import Pipeline
from flows.reporting import run_logger
from flows.scaffold import Run


class TokenizeConfig(RunConfig):
    tokenizer: TokenizerConfig = TokenizerConfig()
    tokenized: TokenizedConfig = TokenizedConfig()


def _tokenizer_path(cfg: TokenizeConfig) -> str:
    from corpora.mix_steps import tokenizer_path as mix_tokenizer  # the very same resolution as the mix's counts

    return mix_tokenizer(cfg)


def input_files(inputs: list[str]) -> tuple[list[Path], Path | None]:
    """Parquet files in order: a run folder's data/part-*.parquet, or the given files/folders; and its plan.json."""
    if not inputs:
        raise ValueError("tokenize needs --input <a mix output folder or Parquet files>")
    files, plan = [], None
    for i in inputs:
        p = Path(i)
        if p.is_dir() and (p / "data").is_dir():
            files += sorted((p / "data").glob("part-*.parquet"))
            plan = p / "plan.json" if (p / "plan.json").is_file() else plan
        else:
            files += [f for f in expand_inputs([i]) if f.suffix == ".parquet"]
    if not files:
        raise ValueError(f"tokenize: no Parquet files in {', '.join(inputs)}")
    return files, plan


@task(name="tokenize-shards", cache_policy=NO_CACHE)
def tokenize_task(files: list[Path], out: Path, tokenizer: str, cfg: TokenizedConfig) -> dict:
    return tokenize_files(files, out, tokenizer, cfg)


@flow(name="tokenize", log_prints=True)
def tokenize_flow(config: TokenizeConfig) -> dict:
    run = Run.start("tokenize", config, kinds=("tokenized", "tokenized.json"))
    files, plan = input_files(config.inputs)
    out = run.out_dir / "tokenized"
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty (a previous run): --set overwrite=true to replace it")
    m = tokenize_task(files, out, _tokenizer_path(config), config.tokenized)
    if plan is not None:
        delivered = json.loads(plan.read_text(encoding="utf-8")).get("delivered_tokens")
        m["plan_delivered_tokens"] = delivered
        m["matches_plan"] = delivered == m["tokens_without_eos"]
    atomic_write_json(run.out_dir / "tokenized.json", m)
    # the token files are listed in tokenized.json, not as manifest outputs (the report kit reads those as Parquet)
    read = m["documents"] + len(m["quarantine"])
    inv = {"records_read": read, "documents": m["documents"], "rows_quarantine": len(m["quarantine"]),
           "rows_token_mismatch": m["rows_token_mismatch"],
           "holds": m["rows_token_mismatch"] == 0 and m.get("matches_plan", True) is not False}
    if m["quarantine"]:
        run_logger().warning("%d rows without text were not tokenized (tokenized.json: quarantine)",
                             len(m["quarantine"]))
    line = (f"tokenize: {m['documents']:,} documents, {m['tokens']:,} tokens ({m['tokens_without_eos']:,} without "
            f"EOS) in {len({f['file'] for f in m['files'] if f['file']})} {m['format']} file(s) at {out}"
            + (f"; plan delivered {m['plan_delivered_tokens']:,}: {'equal' if m['matches_plan'] else 'DIFFERENT'}"
               if plan is not None else ""))
    stats = run.finish({"tokenized": {k: v for k, v in m.items() if k not in ("files", "quarantine")}},
                       invariant=inv, summary=line, markdown="```\n" + line + "\n```",
                       inputs=[{"path": str(f)} for f in files])
    return {"output": str(run.out_dir), "stats": stats, "manifest": m}


def _preflight(cfg: TokenizeConfig) -> None:
    input_files(cfg.inputs)
    if cfg.tokenized.format == "megatron":
        import importlib.util

        if importlib.util.find_spec("megatron") is None:
            raise ValueError("tokenized.format=megatron needs megatron-core (the optional extra `megatron`: "
                             "pip install megatron-core)")


PIPELINE = Pipeline(
    name="tokenize",
    description="Token-id shards for trainers (datatrove tokenized format or Megatron .bin/.idx; the mix's "
                "tokenizer, EOS per document, row order kept)",
    config_model=TokenizeConfig,
    flow=tokenize_flow,
    preflight=_preflight,
)
