"""Sentence splitting and numbers, the reference's tools against our rules, on contexts built from news prefixes.

The reference splits with en_core_web_sm's parser and reads numbers with numerizer over spaCy entities
(pipeline/con.py:22, pipeline/filter.py `numerize`). Here: continuations of news prefixes drawn from
`news_prefix.json` (the shared copy of the reference's resource, else the bundled sample resource) by SmolLM2-135M
(transformers, CPU; cached in --work), split into sentences by (a) the rule sentencizer and (b) the named spaCy
model when installed (no spaCy model is installable offline, so (b) falls back to (a): said in the output); then
each sentence's numbers by our rules (`numbers_in`) and by numerizer (`numbers_numerizer`), and the numbers test
(`numbers_ok`, new_in_orig) on every ordered pair of full sentences of the same continuation.

    python bench/impossible_sentences.py --work /tmp/id-sent     # ~24 prefixes x 4 continuations of 96 tokens
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filters.pairs import numbers_in, numbers_numerizer, numbers_ok  # noqa: E402
from filters.sentences import is_full_sentence, split_sentences, splitter  # noqa: E402

SHARED = Path("/work/shared/data/impossible/news_prefix.json")


def main() -> None:
    from generators.backends import TransformersConfig
    from generators.backends.base import SamplingParams
    from generators.impossible_distillation import SAMPLE_RESOURCE, news_prefixes, round_task
    from generators.rounds import Rounds
    from generators.settings import GenerationSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--news-file", type=Path, default=SHARED if SHARED.is_file() else SAMPLE_RESOURCE)
    ap.add_argument("--prefixes", type=int, default=24)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--spacy-model", default="en_core_web_sm")
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    prefixes = news_prefixes(json.loads(args.news_file.read_text(encoding="utf-8")), args.prefixes, seed=0)
    rounds = Rounds(args.work, GenerationSettings(backend=TransformersConfig()), source="bench", progress=False,
                    log=lambda m: print(m, file=sys.stderr))
    sp = SamplingParams(n=args.n, temperature=1.0, top_p=0.9, max_tokens=args.max_tokens,
                        banned_substrings=["\n"])
    task = round_task("contexts", "context", sp, lambda p: (p["id"], p["text"], {}))  # the generator's requests
    out = rounds.generate("contexts", task.requests(prefixes))
    texts = [r["text"] for r in out.ok]
    used = splitter(args.spacy_model)
    print(f"{len(prefixes)} news prefixes from {args.news_file} (seed 0), {len(texts)} continuations of "
          f"<= {args.max_tokens} tokens by {Path(out.ok[0]['model']).name if out.ok else '-'}")
    print(f"splitter for {args.spacy_model!r}: {used}" + ("" if used == args.spacy_model else
                                                          " (not installed: the rule sentencizer runs)"))
    a = [split_sentences(t) for t in texts]
    b = [split_sentences(t, args.spacy_model) for t in texts]
    same = sum(x == y for x, y in zip(a, b))
    print(f"sentences: rules {sum(map(len, a))}, {used} {sum(map(len, b))}; continuations split identically: "
          f"{same}/{len(texts)}")
    sents = [s for ss in a for s in ss if is_full_sentence(s)]
    ours, numz = [numbers_in(s) for s in sents], [numbers_numerizer(s) for s in sents]
    with_num = sum(bool(x or y) for x, y in zip(ours, numz))
    diff = [(s, x, y) for s, x, y in zip(sents, ours, numz) if x != y]
    print(f"full sentences: {len(sents)}; with a number (either reader): {with_num}; number sets differ: "
          f"{len(diff)}")
    for s, x, y in diff[:12]:
        print(f"  rules {sorted(x)} numerizer {sorted(y)}: {s[:110]}")
    total = changed = 0
    for ss in a:
        full = [s for s in ss if is_full_sentence(s)]
        if len(full) < 2:
            continue
        I, J = np.where(~np.eye(len(full), dtype=bool))
        r1, r2 = numbers_ok(full, I, J), numbers_ok(full, I, J, extract=numbers_numerizer)
        total += len(I)
        changed += int((r1 != r2).sum())
    print(f"numbers test (new_in_orig) on {total} ordered pairs of full sentences of the same continuation: "
          f"{changed} decisions differ between rules and numerizer ({changed / max(total, 1):.1%})")


if __name__ == "__main__":
    main()
