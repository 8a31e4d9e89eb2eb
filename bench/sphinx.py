"""Rows/s of the sphinx pipeline without a model: each pure step on the shared Self-Instruct seeds (replicated),
then the whole flow (Prefect, rounds, checks, MiniLM neighbours, Hive publishing) with a replay backend whose
"translation" is the masked English itself (every span comes back; language ID fails every row, so the checks
run their full course). Model speed is the backends' business: `bench/generation.py`.

    python bench/sphinx.py                  # 175 seeds x 8 copies, 3 languages of 400 rows
    python bench/sphinx.py --copies 2 --per-language 100
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora.readers import FieldMap, read_records  # noqa: E402
from filters.langid import find_lid_model, load_fasttext  # noqa: E402
from filters.protected_spans import restore  # noqa: E402
from generators.sphinx import assemble, requests_for  # noqa: E402
from generators.sphinx_config import SphinxConfig  # noqa: E402
from generators.sphinx_sources import draw, english_source, prepare  # noqa: E402

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "instruct" / "self_instruct_seed_tasks.jsonl"


def replicated(copies: int, tmp: Path) -> Path:
    out = tmp / "seeds.jsonl"
    lines = SEEDS.read_text(encoding="utf-8").splitlines()
    with out.open("w", encoding="utf-8") as f:
        for k in range(copies):
            for line in lines:
                t = json.loads(line)
                t["id"] = f"{t['id']}#{k}"
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--per-language", type=int, default=400)
    ap.add_argument("--skip-flow", action="store_true")
    a = ap.parse_args()
    if not SEEDS.is_file():
        sys.exit(f"{SEEDS} not found (the shared data sits beside the project)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sphinx-"))
    seeds = replicated(a.copies, tmp)
    langs = ["de", "tr", "sw"]
    sets = [f"targets=[{','.join(langs)}]", "selection.tier_counts=" + json.dumps(
        {"high": a.per_language, "mid": a.per_language, "low": a.per_language})]
    from flows.config import load_config

    cfg = load_config(SphinxConfig, inputs=[str(seeds)], output=str(tmp / "out"), sets=sets)
    records = list(read_records(seeds, FieldMap(text_field="instruction")))
    table = []

    t = time.perf_counter()
    sources = [english_source(r) for r in records]
    for s in sources:
        prepare(s, cfg.rules)
    dt = time.perf_counter() - t
    table.append(("rules + span masking", len(sources), dt))
    pool = [s for s in sources if s.rule.translated]
    draws = draw(pool, langs, cfg)
    lid = load_fasttext(str(find_lid_model()))

    answers, n_rows = [], 0
    t = time.perf_counter()
    for lang in langs:
        for s in draws[lang]:
            for q in requests_for(s, lang, cfg):
                answers.append({"request_id": q.id, "text": s.masked[q.meta["part"]], "finish_reason": "stop"})
    table.append(("request building", len(answers), time.perf_counter() - t))
    t = time.perf_counter()
    n = 0
    for s in pool:
        for f, m in s.masked.items():
            restore(m, s.spans[f])
            n += 1
    table.append(("restore + hash check (per field)", n, time.perf_counter() - t))
    t = time.perf_counter()
    for lang in langs:
        for s in draws[lang]:
            recs = {p: {"text": s.masked[p], "finish_reason": "stop", "completion_tokens": 1, "model": "echo"}
                    for p in s.masked}
            assemble(s, lang, recs, {}, cfg, lid)
            n_rows += 1
    table.append(("restore + checks (LID, ratio, refusal) per row", n_rows, time.perf_counter() - t))

    if not a.skip_flow:
        replay = tmp / "echo.jsonl"
        replay.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in answers), encoding="utf-8")
        from flows.sphinx import sphinx_flow

        cfg = load_config(SphinxConfig, inputs=[str(seeds)], output=str(tmp / "out"), sets=sets + [
            "generation.backend.kind=replay", f"generation.backend.path={replay}",
            "nshot.pool=all", "keep_failed=true", "english_rows=false"])  # every row fails LID here: keep them
        # in data/ and let all rows be neighbours, so MiniLM runs on the translated rows as before
        t = time.perf_counter()
        res = sphinx_flow(cfg)
        wall = time.perf_counter() - t
        st = res["stats"]["sphinx"]
        table.append(("flow: generator (rounds on replay, checks, MiniLM n=3, pool=all)", st["rows"], st["timing"]["wall_s"]))
        table.append(("  of which LANGIT neighbours (MiniLM)", st["rows"], st["timing"]["nshot_s"]))
        table.append(("flow: whole run (Prefect start, publish, report)", st["rows"], wall))

    print(f"\nsphinx bench: {len(records)} English sources ({a.copies} x the shared seeds), {len(pool)} translatable, "
          f"{len(langs)} languages x {a.per_language}")
    print(f"{'step':<58}{'items':>8}{'seconds':>10}{'items/s':>12}")
    for name, k, s in table:
        print(f"{name:<58}{k:>8}{s:>10.3f}{(k / s if s else float('inf')):>12,.0f}")


if __name__ == "__main__":
    main()
