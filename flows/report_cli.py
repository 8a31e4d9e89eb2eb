"""`flows report DIR` (rebuild report.html and the README.md dataset card of any run) and `flows inspect DIR`
(sample rows of an output in the terminal: text cut to width, the scores beside it)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

if TYPE_CHECKING:
    from corpora.report_kit import RunOutputs


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def report_cmd(out_dir: Path = typer.Argument(..., help="a run's output folder"),
               card: bool = typer.Option(True, "--card/--no-card", help="also rewrite the README.md dataset card")
               ) -> None:
    """Rebuild report.html (and README.md) of a run from its outputs (manifest.json, stats.json, shards)."""
    from flows.run_report import write_dataset_card, write_report

    try:
        path, report = write_report(out_dir)
        card_path = write_dataset_card(out_dir) if card else None
    except (FileNotFoundError, NotADirectoryError) as e:
        _fail(str(e))
        return
    typer.echo(f"report: {path} ({report.figures} figures, {len(report.sections)} sections, {report.seconds:.2f} s)")
    for e in report.errors:
        typer.echo(f"warning: section not drawn: {e}", err=True)
    if card_path:
        typer.echo(f"card: {card_path}")


WIDE_COLUMNS = {"text", "metadata", "prompt", "completion_unfiltered", "sampling_params", "evidence", "raw",
                "candidates", "pairwise_rougeL", "x_l", "y_orig", "completion", "token_logprobs"}


def reason_names(reason: Any) -> list[str]:
    """"spans:<s1>:missing; lid=en" -> ["spans", "lid"] (several failed checks in one reason, as sphinx writes
    them); a plain reason is its own name."""
    if reason is None:
        return []
    return [p.split("=")[0].split(":")[0].strip() for p in str(reason).split("; ") if p.strip()]


def sample_rows(run: RunOutputs, kind: str, *, reason: str | None = None, limit: int = 5,
                columns: list[str] | None = None) -> tuple[list[dict], Counter]:
    """Up to `limit` rows of `kind` (first ones in shard order) whose `reason` or `reason_detail` is `reason`
    (also `reason:detail`), and the reasons seen while looking. Reads row group by row group: the reason columns
    first, the whole row only for a row group with a match."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen: Counter = Counter()
    out: list[dict] = []
    for f in run.kinds.get(kind, []):
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        want = [c for c in (columns or names) if c in names]
        for c in ("id", "reason", "reason_detail"):
            if c in names and c not in want:
                want.insert(0, c)
        rcols = [c for c in ("reason", "reason_detail") if c in names]
        for g in range(pf.num_row_groups):
            if reason is not None:
                if not rcols:
                    return [], seen
                rt = pf.read_row_group(g, columns=rcols).to_pydict()
                rs = rt.get("reason") or [None] * pf.metadata.row_group(g).num_rows
                ds = rt.get("reason_detail") or [None] * len(rs)
                checks = [reason_names(r) for r in rs]
                for names in checks:
                    seen.update(names)
                idx = [i for i, (r, d, names) in enumerate(zip(rs, ds, checks))
                       if reason in (r, d, f"{r}:{d}") or reason in names]
                if not idx:
                    continue
                table = pf.read_row_group(g, columns=want).take(pa.array(idx[:limit - len(out)]))
            else:
                table = pf.read_row_group(g, columns=want).slice(0, limit - len(out))
            out += table.to_pylist()
            if len(out) >= limit:
                return out, seen
    return out, seen


# beside the text: the decision, the scores (numbers, flags) and these short labels; not the provenance ids
DECISIONS = {"language", "lang", "status", "finish_reason", "round", "model", "slice", "split", "date_source",
             "decided_by", "style", "audience", "mode", "type", "title", "author", "rule", "tier", "seed_source",
             "contaminated_by", "dup_cluster_id", "undated_reason"}
QUIET = {"completion_index", "attempts", "retryable", "prompt_tokens", "paragraph_index", "sentence_index"}


def _value(v) -> str:
    if isinstance(v, str) and len(v) > 200:
        return v[:199] + "…"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(map(str, v[:3])) + (" …" if len(v) > 3 else "")
    return str(v)


def inspect_cmd(out_dir: Path = typer.Argument(..., help="a run's output folder"),
                kind: Optional[str] = typer.Option(None, "--kind", help="output kind (default: data; rejected with "
                                                                          "--reason)"),
                reason: Optional[str] = typer.Option(None, "--reason", help="only rows whose reason or "
                                                                              "reason_detail is this"),
                limit: int = typer.Option(5, "--limit", min=1, help="rows to print"),
                columns: List[str] = typer.Option([], "--column", help="show these columns beside the text "
                                                                        "(repeatable; default: the scores)"),
                chars: Optional[int] = typer.Option(None, "--chars", help="text characters per row (default: about "
                                                                           "four lines of the terminal)"),
                ) -> None:
    """Print sample rows of an output (text cut to width, scores beside it): why were these documents removed?"""
    from rich.console import Console
    from rich.table import Table

    from corpora.report_kit import load_outputs

    try:
        run = load_outputs(out_dir)
    except (FileNotFoundError, NotADirectoryError) as e:
        _fail(str(e))
        return
    if kind is None and reason is not None and "rejected" in run.kinds and "data" in run.kinds and \
            run.has("data", "reason") and not sample_rows(run, "rejected", reason=reason, limit=1)[0]:
        kind = "data"  # failing rows kept in data/ with their reason (e.g. sphinx's status=fail)
    kind = kind or ("rejected" if reason else "data")
    if kind not in run.kinds:
        _fail(f"{out_dir}: no output '{kind}' (outputs: {', '.join(run.kinds) or 'none'})")
    schema = run.schema(kind)
    if schema is None:
        typer.echo(f"{kind}/ has no rows")
        return
    missing = [c for c in columns if c not in schema.names]
    if missing:
        _fail(f"{kind}/ has no column {missing[0]!r} (columns: {', '.join(schema.names)})")
    text_col = "text" if "text" in schema.names else None
    rows, seen = sample_rows(run, kind, reason=reason, limit=limit,
                             columns=(["id", *columns] + ([text_col] if text_col else [])) if columns else None)
    total = run.rows(kind)
    if not rows:
        if reason is not None and "reason" not in schema.names:
            _fail(f"{kind}/ has no reason column", 1)
        where = f" with reason {reason!r}" if reason else ""
        hint = f" (reasons: {', '.join(f'{r} {n:,}' for r, n in seen.most_common(12))})" if seen else ""
        _fail(f"no rows{where} in {kind}/{hint}", 1)
    console = Console()
    width = console.width
    text_w = max(30, width - 56)
    chars = chars or text_w * 4
    t = Table(title=f"{kind}/ of {run.out_dir}: {len(rows)} of {total:,} rows" + (f", reason {reason}" if reason
                                                                                 else ""),
              show_lines=True, expand=True)
    t.add_column("id", overflow="fold", max_width=22)
    t.add_column("why / scores", overflow="fold", width=30)
    if text_col:
        t.add_column(text_col, overflow="fold", min_width=text_w, ratio=1)
    for r in rows:
        if columns:
            shown = [(c, r.get(c)) for c in columns if c != text_col]
        else:
            shown = [(c, v) for c, v in r.items() if v is not None and c != "id" and c not in WIDE_COLUMNS
                     and c not in QUIET and (c in ("reason", "reason_detail", "error") or c in DECISIONS
                                             or isinstance(v, (int, float)))]
        first = [(c, v) for c, v in shown if c in ("reason", "reason_detail", "error")]
        rest = [(c, v) for c, v in shown if c not in ("reason", "reason_detail", "error")]
        why = "\n".join(f"[bold]{c}[/]={_value(v)}" if c in ("reason", "reason_detail") else f"{c}={_value(v)}"
                        for c, v in first + rest)
        cells = [str(r.get("id")), why]
        if text_col:
            text = " ".join(str(r.get(text_col) or "").split())
            cells.append(text if len(text) <= chars else text[:chars - 1] + "…")
        t.add_row(*cells)
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("inspect")(inspect_cmd)
