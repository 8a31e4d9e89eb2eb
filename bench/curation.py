"""Curation speed and decision agreement: our filter stack vs datatrove's stock steps, same thresholds, same docs.

Corpus: real web text from ../shared/data/web (DCLM, RedPajama/C4/Pile samples, Dolma CC), cut into ~2 KB windows,
perturbed (word drops/swaps, mixed lines) and repeated to --docs documents (default 50,000), deterministically.

Stacks (one process each, one core; the same five rules in both):
  datatrove: LanguageFilter(en, 0.65; lid.176 from the local file) -> GopherRepetition -> GopherQuality -> C4Quality
             -> FineWebQuality
  ours:      langid -> gopher_quality -> gopher_repetition -> c4 -> fineweb   (filters/*.py)
datatrove is slow (~40 docs/s), so it runs on the first --datatrove-docs documents (default 5,000); agreement is
measured on those. Usage: python bench/curation.py [--docs 50000] [--datatrove-docs 5000]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "web"


def build_corpus(n: int, seed: int = 0) -> list[str]:
    if not SHARED.is_dir():
        raise SystemExit(f"needs the shared web data at {SHARED}")
    base = []
    for f in sorted(SHARED.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            t = json.loads(line).get("text")
            if t and len(t) > 200:
                base.append(t)
    rng = random.Random(seed)
    docs = []
    while len(docs) < n:
        t = rng.choice(base)
        lines = t.split("\n")
        # a ~2 KB window of consecutive lines
        start = rng.randrange(len(lines))
        window, size = [], 0
        for ln in lines[start:] + lines[:start]:
            window.append(ln)
            size += len(ln)
            if size > 2000:
                break
        r = rng.random()
        if r < 0.3:  # drop and swap a few words
            words = " \n ".join(window).split(" ")
            for _ in range(max(1, len(words) // 50)):
                i = rng.randrange(len(words))
                j = rng.randrange(len(words))
                words[i], words[j] = words[j], words[i]
            window = " ".join(w for w in words if rng.random() > 0.02).split(" \n ")
        elif r < 0.4:  # mix lines of two documents
            other = rng.choice(base).split("\n")
            window = window + other[: rng.randint(1, 10)]
        docs.append("\n".join(window))
    return docs


def lid_path() -> str:
    from filters.langid import find_lid_model

    return str(find_lid_model())


def run_ours(docs: list[str], q) -> None:
    from filters.c4 import C4Config, c4_quality
    from filters.fineweb import FineWebConfig, fineweb_quality
    from filters.gopher import GopherQualityConfig, GopherRepetitionConfig, gopher_quality, gopher_repetition
    from filters.langid import LangIdConfig, langid, load_fasttext
    from filters.text import split_words

    model = load_fasttext(lid_path())
    lc, gq, gr, c4, fw = LangIdConfig(), GopherQualityConfig(), GopherRepetitionConfig(), C4Config(), FineWebConfig()
    decisions = []
    t0 = time.perf_counter()
    for text in docs:
        reason = None
        d = langid(text, lc, model)
        if not d.keep:
            reason = "langid"
        else:
            words = split_words(text)
            for name, dd in (("gopher_quality", lambda: gopher_quality(text, gq, words)),
                             ("gopher_repetition", lambda: gopher_repetition(text, gr, words))):
                d = dd()
                if not d.keep:
                    reason = name
                    break
            if reason is None:
                d = c4_quality(text, c4)
                if not d.keep:
                    reason = "c4"
                else:
                    d = fineweb_quality(d.text, fw)
                    if not d.keep:
                        reason = "fineweb"
        decisions.append(reason)
    secs = time.perf_counter() - t0
    q.put({"secs": secs, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "decisions": decisions})


def run_datatrove(docs: list[str], q) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter)

    lf = LanguageFilter(languages=["en"], language_threshold=0.65)
    lf.model.MODEL_URL = "file://" + lid_path()
    steps = [("langid", lf), ("gopher_repetition", GopherRepetitionFilter()), ("gopher_quality", GopherQualityFilter()),
             ("c4", C4QualityFilter()), ("fineweb", FineWebQualityFilter())]
    lf.filter(Document(text="warm up the model", id="w"))  # copies the model file into the cache once
    decisions = []
    t0 = time.perf_counter()
    for i, text in enumerate(docs):
        doc = Document(text=text, id=str(i))
        reason = None
        for name, f in steps:
            r = f.filter(doc)
            keep = r if isinstance(r, bool) else r[0]
            if not keep:
                reason = name
                break
        decisions.append(reason)
    secs = time.perf_counter() - t0
    q.put({"secs": secs, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "decisions": decisions})


def in_child(fn, docs):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(docs, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--datatrove-docs", type=int, default=5_000)
    args = ap.parse_args()
    docs = build_corpus(args.docs)
    sub = docs[: args.datatrove_docs]
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"corpus: {len(docs):,} docs, {mb:.1f} MB, mean {mb * 1e6 / len(docs):,.0f} bytes/doc; "
          f"datatrove on the first {len(sub):,}")
    ours = in_child(run_ours, docs)
    ours_same = in_child(run_ours, sub)  # same documents as datatrove: RSS and speed like for like
    theirs = in_child(run_datatrove, sub)
    ours_sub = ours["decisions"][: len(sub)]
    agree = sum((a is None) == (b is None) for a, b in zip(ours_sub, theirs["decisions"])) / len(sub)
    same_reason = sum(a == b for a, b in zip(ours_sub, theirs["decisions"])) / len(sub)
    o_rate = len(docs) / ours["secs"]
    t_rate = len(sub) / theirs["secs"]
    kept_o = sum(d is None for d in ours["decisions"]) / len(docs)
    kept_t = sum(d is None for d in theirs["decisions"]) / len(sub)
    rows = [
        ("stack", "docs", "seconds", "docs/s (1 core)", "MB/s", "peak RSS MB", "kept"),
        ("datatrove stock", f"{len(sub):,}", f"{theirs['secs']:.1f}", f"{t_rate:,.0f}",
         f"{t_rate * mb / len(docs):.2f}", f"{theirs['rss_mb']:.0f}", f"{kept_t:.1%}"),
        ("ours (same docs)", f"{len(sub):,}", f"{ours_same['secs']:.1f}", f"{len(sub) / ours_same['secs']:,.0f}",
         f"{len(sub) / ours_same['secs'] * mb / len(docs):.2f}", f"{ours_same['rss_mb']:.0f}",
         f"{sum(d is None for d in ours_same['decisions']) / len(sub):.1%}"),
        ("ours (all docs)", f"{len(docs):,}", f"{ours['secs']:.1f}", f"{o_rate:,.0f}", f"{o_rate * mb / len(docs):.2f}",
         f"{ours['rss_mb']:.0f}", f"{kept_o:.1%}"),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w[i]) for i, c in enumerate(r)))
    print("peak RSS includes the documents held in memory by the child process (ours (all docs) holds all of them)")
    print(f"speed-up: {o_rate / t_rate:.1f}x per core; keep/remove agreement on {len(sub):,} docs: {agree:.2%} "
          f"(same removing filter: {same_reason:.2%})")
    from collections import Counter

    dis = Counter((a, b) for a, b in zip(ours_sub, theirs["decisions"]) if (a is None) != (b is None))
    if dis:
        print("disagreements (ours, datatrove):", dict(dis.most_common(8)))


if __name__ == "__main__":
    main()
