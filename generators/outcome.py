"""What a generator run produced, turned into its outputs: the result checked against the generator's declared
kinds, its `_work/` artifacts written, its rows split into those to post-process and the empty ones; then its row
invariant (data + rejected == generated rows; seeds + quarantine == seed records read), its stats.json, and the
console / markdown summaries. No Prefect."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from rich.table import Table

from corpora.atomic import atomic_write_json
from corpora.shards import write_table_atomic
from generators.contract import Generator, GeneratorResult


def checked_rows(gen: Generator, result: GeneratorResult, work: Path) -> tuple[list[dict], list[dict]]:
    """(rows with text, for post-processing; rows without: rejected as `empty`), once the result's tables are
    known to be declared kinds and its artifacts are written under `work`."""
    unknown = sorted(set(result.tables) - set(gen.kinds))
    if unknown:
        raise ValueError(f"{gen.name}: output kinds {unknown} are not declared in its Generator.kinds")
    for name, artifact in result.artifacts.items():
        if isinstance(artifact, pa.Table):
            write_table_atomic(work / f"{name}.parquet", artifact)
        else:
            atomic_write_json(work / f"{name}.json", artifact)
    rows = [r for r in result.rows if (r.get("text") or "").strip()]
    return rows, [{**r, "reason": "empty"} for r in result.rows if not (r.get("text") or "").strip()]


def run_stats(name: str, rows: dict[str, int], produced: int, per_input: list[dict], seeds_used: int,
              quarantined: int, generator_quarantined: int, is_sample: bool, demo: dict, generation: dict,
              generator_stats: dict, postprocess: dict) -> dict:
    """stats.json of a generator run. `rows`: published rows per kind (data, rejected, quarantine)."""
    seeds_read = sum(i["records"] for i in per_input)
    invariant = {"generated_rows": produced, "rows_data": rows["data"], "rows_rejected": rows["rejected"],
                 "seed_records_read": seeds_read,
                 "seeds": sum(i["records"] - i["quarantined"] for i in per_input) - generator_quarantined,
                 "rows_quarantine": rows["quarantine"]}
    invariant["holds"] = (invariant["rows_data"] + invariant["rows_rejected"] == produced
                          and invariant["seeds"] + invariant["rows_quarantine"] == seeds_read)
    return {"invariant": invariant, "seeds": {"read": seeds_read, "quarantined": quarantined, "used": seeds_used,
                                              "inputs": per_input, "bundled_sample": is_sample, "demo": demo},
            "generation": generation, name: generator_stats, "postprocess": postprocess,
            # seed records under file-level quarantine rows (as dolma's `lost`): known counts, inputs with unknown
            "lost": {"records": sum(i["lost_records"] for i in per_input),
                     "inputs_with_unknown_loss": [i["path"] for i in per_input if i["lost_unknown"]]}}


def summary_table(name: str, out_dir: Path, stats: dict) -> Table:
    t = Table(title=f"{name}: {out_dir}")
    for col in ("round", "model", "requests", "cached", "generated", "failed", "tok/s", "seconds"):
        t.add_column(col, justify="left" if col in ("round", "model") else "right")
    for rname, r in stats["generation"]["rounds"].items():
        t.add_row(rname, f"{r['backend']} {Path(r['model']).name}", f"{r['requests']:,}", f"{r['cached']:,}",
                  f"{r['generated']:,}", f"{r['failed']:,}", f"{r['tokens_per_s']:,.1f}", f"{r['wall_s']:.1f}")
    pp, inv = stats["postprocess"], stats["invariant"]
    removed = ", ".join(f"{k} {v}" for k, v in pp.get("removed", {}).items()) or "none"
    t.caption = (f"{inv['rows_data']:,} rows kept, {inv['rows_rejected']:,} rejected (post-processing removed: "
                 f"{removed}); seed records: {stats['seeds']['used']:,} read, {stats['seeds']['quarantined']:,} "
                 f"quarantined; data + rejected == generated: {'yes' if inv['holds'] else 'NO'}")
    return t


def summary_markdown(name: str, out_dir: Path, stats: dict) -> str:
    lines = [f"# {name}: {out_dir}", "", "| round | model | requests | cached | generated | failed | tok/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for rname, r in stats["generation"]["rounds"].items():
        lines.append(f"| {rname} | {r['backend']} {Path(r['model']).name} | {r['requests']} | {r['cached']} | "
                     f"{r['generated']} | {r['failed']} | {r['tokens_per_s']} |")
    inv = stats["invariant"]
    lines += ["", f"Kept {inv['rows_data']}, rejected {inv['rows_rejected']} of {inv['generated_rows']} generated "
                  f"rows; removed by post-processing: {stats['postprocess'].get('removed', {})}; invariant holds: "
                  f"{inv['holds']}"]
    return "\n".join(lines)
