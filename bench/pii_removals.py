"""Documents the PII filter removes (default `PIIConfig`), per file of ../shared/data/web/*.jsonl.

Usage: python bench/pii_removals.py [--baseline PATH]
PATH is a copy of an older `filters/pii.py` (defining `pii` and `PIIConfig`); with it the table shows the baseline
beside the current code: documents removed, and emails / phones / IPs found over all documents.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WEB = ROOT.parent / "shared" / "data" / "web"


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location("pii_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tally(mod, texts: list[str]) -> dict[str, int]:
    cfg = mod.PIIConfig()
    out = {"removed": 0, "emails": 0, "phones": 0, "ips": 0}
    for t in texts:
        d = mod.pii(t, cfg)
        out["removed"] += not d.keep
        out["emails"] += d.scores["pii_emails"]
        out["phones"] += d.scores["pii_phones"]
        out["ips"] += d.scores["pii_ips"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, help="an older filters/pii.py to compare with")
    args = ap.parse_args()
    if not WEB.is_dir():
        raise SystemExit(f"needs the shared web data at {WEB}")
    import filters.pii as current

    mods = ([("before", load_module(args.baseline))] if args.baseline else []) + [("after", current)]
    files = sorted(WEB.glob("*.jsonl"))
    head = f"{'file':<54} {'docs':>5}" + "".join(
        f" {'removed ' + n:>15} {'e/p/ip ' + n:>18}" for n, _ in mods)
    print(head)
    print("-" * len(head))
    totals = {n: {"removed": 0, "emails": 0, "phones": 0, "ips": 0} for n, _ in mods}
    n_docs = 0
    for f in files:
        texts = [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        n_docs += len(texts)
        row = f"{f.name:<54} {len(texts):>5}"
        for name, mod in mods:
            t = tally(mod, texts)
            for k in t:
                totals[name][k] += t[k]
            row += f" {t['removed']:>15} {str(t['emails']) + '/' + str(t['phones']) + '/' + str(t['ips']):>18}"
        print(row)
    print("-" * len(head))
    row = f"{'all':<54} {n_docs:>5}"
    for name, _ in mods:
        t = totals[name]
        row += f" {t['removed']:>15} {str(t['emails']) + '/' + str(t['phones']) + '/' + str(t['ips']):>18}"
    print(row)


if __name__ == "__main__":
    main()
