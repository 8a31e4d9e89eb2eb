"""sphinx's language check on short and low-resource text: pass rate of correct translations and catch rate of
wrong-language outputs, before (lid.176, one threshold 0.5, no English-clause check) and after (per-tier
thresholds, English clauses, and the lingua checkers), on `tests/data/sphinx_lid_set.jsonl` (hand-written: 15
languages (de/tr/sw of the demo, 6 more mid and 6 more low), 4 correct translations each, and per target 4 wrong
outputs: English short and long, half-translated (the first clause only), a neighbouring language).

    python bench/sphinx_lid.py            # the table (bench/results/sphinx-lid.txt)
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.langid import find_lid_model, load_fasttext  # noqa: E402
from generators.sphinx import SphinxConfig  # noqa: E402
from generators.sphinx_checks import ChecksConfig, CheckedField, check_row  # noqa: E402

SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "sphinx_lid_set.jsonl"
BEFORE = dict(lid_checker="fasttext", lid_tier_thresholds={}, lid_threshold=0.5, lid_accept={},
              english_segments=False)
VARIANTS = {"before: lid.176 p>=0.5": BEFORE,
            "lid.176 per tier (default)": {},
            "lid.176 per tier, no English-clause check": {"english_segments": False},
            "lingua": {"lid_checker": "lingua"},
            "either (lid.176 or lingua)": {"lid_checker": "either"}}


def lid_failures(row: dict, cfg: ChecksConfig, model, tier_thr: float | None) -> list[str]:
    f = CheckedField("response", row["text"], row["text"], "stop")
    res = check_row([f], row["target"], True, [], cfg, model, threshold=tier_thr)
    return [x for x in res.failures if x.startswith(("lid_", "english_in_"))]


def main() -> None:
    rows = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    model = load_fasttext(str(find_lid_model()))
    langs = SphinxConfig().languages
    lines = [f"{len(rows)} rows: {sum(r['correct'] for r in rows)} correct, {sum(not r['correct'] for r in rows)} "
             f"wrong, {len({r['target'] for r in rows})} target languages", ""]
    head = (f"{'checker':44} {'correct pass':>13} {'high':>6} {'mid':>6} {'low':>6} | {'wrong caught':>12} "
            f"{'en':>6} {'mixed':>6} {'neighb.':>7} {'ms/row':>7}")
    lines += [head, "-" * len(head)]
    missed: dict[str, list[str]] = {}
    for name, over in VARIANTS.items():
        cfg = ChecksConfig(**{**ChecksConfig().model_dump(), **over})
        ok, tot = defaultdict(int), defaultdict(int)
        t = time.perf_counter()
        miss = []
        for r in rows:
            tier = langs[r["target"]].tier
            thr = langs[r["target"]].lid_threshold
            thr = thr if thr is not None else cfg.lid_tier_thresholds.get(tier)
            failed = bool(lid_failures(r, cfg, model, thr))
            kind = "en" if r["written_in"] == "en" else "mixed" if r["written_in"].startswith("mixed") else "nb"
            keys = ["c", f"c:{tier}"] if r["correct"] else ["w", f"w:{kind}"]
            good = (not failed) if r["correct"] else failed
            for k in keys:
                tot[k] += 1
                ok[k] += good
            if not good:
                miss.append(f"{r['target']}:{'correct' if r['correct'] else r['written_in']}:{r['src']}")
        ms = (time.perf_counter() - t) / len(rows) * 1000

        def rate(k: str) -> str:
            return f"{ok[k] / tot[k]:.3f}" if tot[k] else "-"
        lines.append(f"{name:44} {rate('c'):>13} {rate('c:high'):>6} {rate('c:mid'):>6} {rate('c:low'):>6} | "
                     f"{rate('w'):>12} {rate('w:en'):>6} {rate('w:mixed'):>6} {rate('w:nb'):>7} {ms:7.2f}")
        missed[name] = miss
    lines.append("")
    for name, miss in missed.items():
        lines.append(f"misjudged by {name} ({len(miss)}): {', '.join(miss)}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
