"""sphinx: instruction and response translated separately (two requests) or together (one request), on the replay
set (bench/data/replay/sphinx: the bundled-sample demo, de / tr / sw with 3 / 2 / 1 rows, SmolLM2-135M answers).

The separate answers are the replay set's own. The together answers were recorded once with the same model and
prompt settings (`--record`: SmolLM2-135M on CPU via the transformers backend, temperature 0, max_tokens 96 = the
two separate requests' 48 + 48) into bench/data/replay/sphinx/together/; without `--record` this reads them.

Measured per mode, over the rows whose instruction and response both went to the model:
- shared protected spans: a span text in both English parts (a name, a number with its unit, code) that comes back
  intact in one part and not in the other (`differs`), or in neither;
- (a together reply without its two headings, `together_unparsed`, has no response to compare: counted apart)
- repeated terms: a content word (>= 4 letters, not a stop word) in both English parts that the translation keeps
  verbatim in exactly one of the two parts (translated one way here and left as it was there: `differs`);
- the row checks (generators/sphinx_checks.py): pass rate, failures by check, `together_unparsed`.

    python bench/sphinx_together.py           # read both answer sets, print, write bench/results/sphinx_together.txt
    python bench/sphinx_together.py --record     # (re)record the together answers first (minutes on CPU)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpora.readers import FieldMap, read_records  # noqa: E402
from filters.langid import find_lid_model, load_fasttext  # noqa: E402
from filters.protected_spans import has_prose as _needs_model  # noqa: E402
from generators.sphinx import GENERATOR, SAMPLE, assemble, requests_for  # noqa: E402
from generators.sphinx_config import SphinxConfig  # noqa: E402
from generators.sphinx_sources import draw, english_source, prepare  # noqa: E402

REPLAY = ROOT / "bench" / "data" / "replay" / "sphinx"
TOGETHER = REPLAY / "together"
RESULT = ROOT / "bench" / "results" / "sphinx_together.txt"
TOGETHER_MAX_TOKENS = 96
STOP = set("""that this with from have will your they them their there what when where which about into over than
then also some such each more most only very just like make made many much must should would could been were
being does done give given using used here those these other every both after before while because""".split())


def demo_config(mode: str) -> SphinxConfig:
    demo = GENERATOR.demo
    sampling = {"temperature": 0.0, "max_tokens": demo["translation.sampling.max_tokens"] if mode == "separate"
                else TOGETHER_MAX_TOKENS}
    return SphinxConfig(targets=demo["targets"], selection={"tier_counts": demo["selection.tier_counts"]},
                        translation={"mode": mode, "sampling": sampling}, nshot={"n": 0})


def sources_and_draws(cfg: SphinxConfig):
    sources = [english_source(r) for r in read_records(SAMPLE, FieldMap(text_field="instruction"))]
    for s in sources:
        if s.problem is None:
            prepare(s, cfg.rules)
    pool = [s for s in sources if s.rule is not None and s.rule.translated]
    return draw(pool, cfg.target_codes(), cfg)


def load_answers(folder: Path) -> dict[str, dict]:
    rounds = json.loads((folder / "rounds.json").read_text())
    out = {}
    for f in rounds.values():
        for line in (folder / f).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out[r["request_id"]] = r
    return out


def record() -> None:
    from generators.backends import TransformersConfig, make_backend

    cfg = demo_config("together")
    draws = sources_and_draws(cfg)
    backend = make_backend(TransformersConfig(threads=2, batch_size=8))
    TOGETHER.mkdir(parents=True, exist_ok=True)
    rounds = {}
    for lang, srcs in draws.items():
        reqs = [q for s in srcs for q in requests_for(s, lang, cfg)]
        f = f"translate-{lang}.jsonl"
        rounds[f"translate#{lang}"] = f
        if (TOGETHER / f).is_file() and {json.loads(x)["request_id"] for x in (TOGETHER / f).read_text(
                encoding="utf-8").splitlines()} == {q.id for q in reqs}:
            continue  # recorded already (a run cut off goes on where it stopped)
        res = backend.generate(reqs)
        with (TOGETHER / f).open("w", encoding="utf-8") as fh:
            for r in res:
                fh.write(json.dumps({"request_id": r.request_id, "completion_index": r.completion_index,
                                     "text": r.text, "finish_reason": r.finish_reason,
                                     "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                                     "model": "SmolLM2-135M-Instruct (transformers, CPU)"},
                                    ensure_ascii=False, sort_keys=True) + "\n")
        print(f"recorded {len(res)} together answers for {lang}", flush=True)
    (TOGETHER / "rounds.json").write_text(json.dumps(rounds, indent=1) + "\n")


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]{4,}", text.casefold()) if w not in STOP}


def measure(mode: str, answers: dict[str, dict], lid) -> dict:
    cfg = demo_config(mode)
    draws = sources_and_draws(cfg)
    m = Counter()
    fails: Counter = Counter()
    for lang, srcs in draws.items():
        for s in srcs:
            parts = [p for p in ("instruction", "response") if p in s.masked and _needs_model(s.masked[p])]
            recs, missing = {}, []
            for q in requests_for(s, lang, cfg):
                a = answers.get(q.id)
                if a is None:
                    missing.append(q.id)
                else:
                    recs[q.meta["part"]] = {**a, "backend": "replay"}
            if missing:
                m["rows_unanswered"] += 1
                continue
            row, _why = assemble(s, lang, recs, {}, cfg, lid)
            m["rows"] += 1
            m["pass"] += row["status"] == "pass"
            for f in (row["reason"] or "").split("; "):
                if f:
                    fails[f.split("=")[0].split(":")[0]] += 1
            if len(parts) < 2:
                continue
            m["rows_both_parts"] += 1
            if row["response"] is None:  # together_unparsed: no response to compare (counted as a failure above)
                m["rows_both_parts_unparsed"] += 1
                continue
            ins, resp = row["instruction"] or "", row["response"] or ""
            # protected spans whose text is in both English parts
            by_text: dict[str, dict[str, set]] = {}
            for sp in row["protected_spans"]:
                by_text.setdefault(sp["text"], {}).setdefault(sp["field"], set()).add(sp["status"])
            for text, fields in by_text.items():
                if set(fields) != {"instruction", "response"}:
                    continue
                ok = {f: all(st in ("restored", "verbatim") for st in sts) for f, sts in fields.items()}
                m["shared_spans"] += 1
                m["shared_spans_differ"] += ok["instruction"] != ok["response"]
                m["shared_spans_lost_both"] += not any(ok.values())
            # content words in both English parts
            shared = words(s.instruction) & words(s.response)
            ti, tr = words(ins), words(resp)
            for w in shared:
                m["repeated_terms"] += 1
                m["repeated_terms_differ"] += (w in ti) != (w in tr)
    return {"mode": mode, **m, "failures": dict(sorted(fails.items()))}


def rate(a: int, b: int) -> str:
    return f"{a}/{b} = {a / b:.3f}" if b else f"{a}/0"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args()
    if a.record:
        record()
    if not (TOGETHER / "rounds.json").is_file():
        sys.exit(f"{TOGETHER}/rounds.json not found: run with --record once")
    lid = load_fasttext(str(find_lid_model()))
    res = [measure("separate", load_answers(REPLAY), lid), measure("together", load_answers(TOGETHER), lid)]
    lines = ["sphinx: separate vs together translation of instruction + response, on the replay set",
             "(bench/data/replay/sphinx: bundled sample, demo de/tr/sw 3/2/1 rows, SmolLM2-135M-Instruct, T=0;",
             f" separate: 2 requests x 48 tokens; together: 1 request x {TOGETHER_MAX_TOKENS} tokens)",
             "python bench/sphinx_together.py", ""]
    for r in res:
        lines += [f"[{r['mode']}]",
                  f"  rows {r.get('rows', 0)} (unanswered {r.get('rows_unanswered', 0)}), "
                  f"pass {rate(r.get('pass', 0), r.get('rows', 0))}",
                  f"  rows with both parts sent: {r.get('rows_both_parts', 0)} (together_unparsed, not compared: "
                  f"{r.get('rows_both_parts_unparsed', 0)})",
                  f"  shared protected spans differing between the parts: "
                  f"{rate(r.get('shared_spans_differ', 0), r.get('shared_spans', 0))}; lost in both: "
                  f"{r.get('shared_spans_lost_both', 0)}",
                  f"  repeated terms kept in one part only: "
                  f"{rate(r.get('repeated_terms_differ', 0), r.get('repeated_terms', 0))}",
                  f"  failures by check: {r['failures']}", ""]
    sep, tog = res

    def differ(r):
        d, n = r.get("shared_spans_differ", 0) + r.get("repeated_terms_differ", 0), \
            r.get("shared_spans", 0) + r.get("repeated_terms", 0)
        return d / n if n else None

    better = (tog.get("pass", 0) >= sep.get("pass", 0) and not tog.get("rows_both_parts_unparsed", 0)
              and differ(tog) is not None and differ(sep) is not None and differ(tog) < differ(sep))
    lines += [f"verdict: together is {'better' if better else 'not better'} on this set (needs: pass rate not lower, "
              "no unparsed reply, fewer differing shared spans + repeated terms)",
              f"default translation.mode: {'together' if better else 'separate'}"]
    text = "\n".join(lines)
    print(text)
    RESULT.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
