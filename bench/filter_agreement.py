"""Per-filter agreement with datatrove's stock filters on every real page of ../shared/data/web/*.jsonl.

Each filter decides every page on its own (original text, default thresholds on both sides), so a disagreement
is that filter's alone, not a knock-on effect of an earlier one. datatrove's LanguageFilter reads the same local
lid.176 file; its C4BadWordsFilter gets the English list we ship (the LDNOOBW list datatrove downloads), compiled
the way datatrove compiles it, since nothing may be downloaded here. The last lines: documents the PII filter
removes now (the old pattern's count is in bench/pii_removals.py's history: 5 of 300 / 6 of 583 before the fix).

Usage: python bench/filter_agreement.py        (about a minute)
"""
from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WEB = ROOT.parent / "shared" / "data" / "web"


def pages() -> list[tuple[str, str]]:
    if not WEB.is_dir():
        raise SystemExit(f"needs the shared web data at {WEB}")
    out = []
    for f in sorted(WEB.glob("*.jsonl")):
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines()):
            t = json.loads(line).get("text")
            if t:
                out.append((f"{f.name}:{i + 1}", t))
    return out


def ours():
    from filters.c4 import C4BadWordsConfig, C4Config, c4_badwords, c4_quality
    from filters.fineweb import FineWebConfig, fineweb_quality
    from filters.gopher import GopherQualityConfig, GopherRepetitionConfig, gopher_quality, gopher_repetition
    from filters.langid import LangIdConfig, find_lid_model, langid, load_fasttext
    from filters.text import split_words

    model = load_fasttext(str(find_lid_model()))
    lc, gq, gr, c4, fw = LangIdConfig(), GopherQualityConfig(), GopherRepetitionConfig(), C4Config(), FineWebConfig()
    bw = C4BadWordsConfig(enabled=True)
    return {
        "langid": lambda t: langid(t, lc, model).keep,
        "gopher_quality": lambda t: gopher_quality(t, gq, split_words(t)).keep,
        "gopher_repetition": lambda t: gopher_repetition(t, gr, split_words(t)).keep,
        "c4": lambda t: c4_quality(t, c4).keep,
        "fineweb": lambda t: fineweb_quality(t, fw, split_words(t)).keep,
        "c4_badwords": lambda t: c4_badwords(t, bw, "en").keep,
    }


def theirs():
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4BadWordsFilter, C4QualityFilter, FineWebQualityFilter,
                                            GopherQualityFilter, GopherRepetitionFilter, LanguageFilter)

    from filters.c4 import BADWORDS_ALLOWLIST, SHIPPED_BADWORDS
    from filters.langid import find_lid_model

    lf = LanguageFilter(languages=["en"], language_threshold=0.65)
    lf.model.MODEL_URL = "file://" + str(find_lid_model())
    bw = C4BadWordsFilter()
    words = {ln.strip() for ln in SHIPPED_BADWORDS["en"].read_text(encoding="utf-8").splitlines()} - BADWORDS_ALLOWLIST
    bw._badwords_regex["en"] = re.compile(r"(?:\W|^)({})(?:\W|$)".format("|".join(re.escape(w) for w in words)))
    steps = {"langid": lf, "gopher_quality": GopherQualityFilter(), "gopher_repetition": GopherRepetitionFilter(),
             "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter(), "c4_badwords": bw}

    def call(f):
        def keep(t):
            r = f.filter(Document(text=t, id="x", metadata={"language": "en"}))
            return r if isinstance(r, bool) else r[0]
        return keep
    return {k: call(f) for k, f in steps.items()}


def main() -> None:
    docs = pages()
    a, b = ours(), theirs()
    print(f"{len(docs)} pages from {WEB}\n")
    print(f"{'filter':18s} {'pages':>6s} {'ours rm':>8s} {'dt rm':>6s} {'agree':>6s} {'agree %':>8s} "
          f"{'ours s':>7s} {'dt s':>7s}  disagreements")
    for name in a:
        t0 = time.perf_counter()
        mine = [a[name](t) for _, t in docs]
        t1 = time.perf_counter()
        ref = [b[name](t) for _, t in docs]
        t2 = time.perf_counter()
        agree = sum(x == y for x, y in zip(mine, ref))
        dis = [w for (w, _), x, y in zip(docs, mine, ref) if x != y]
        print(f"{name:18s} {len(docs):6d} {mine.count(False):8d} {ref.count(False):6d} {agree:6d} "
              f"{agree / len(docs):8.2%} {t1 - t0:7.2f} {t2 - t1:7.2f}  {', '.join(dis[:4])}")
    from filters.pii import PIIConfig, pii

    removed = Counter(pii(t, PIIConfig()).keep for _, t in docs)[False]
    print(f"\nPII filter (default max_matches={PIIConfig().max_matches}): removes {removed} of {len(docs)} pages")


if __name__ == "__main__":
    main()
