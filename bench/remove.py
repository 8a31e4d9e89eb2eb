"""`flows run remove` throughput: documents checked per second, by phase, on a generated corpus with lineage.

Corpus: N documents of 120-200 words drawn from a 5,000-word vocabulary (seeded), 1% of them planted near
duplicates (3% of words changed) of another document, written as one output folder (data/ + manifest). Derived
datasets: N/4 rows whose `parent_ids` name corpus documents, and N/8 rows made from those (two levels).
Removal: 0.5% of the documents by id plus one of 200 domains, near duplicates on, both derived datasets followed.

Phases: load (every kind of the version), match (rules + MinHash clusters over every text), lineage (to a
fixpoint over the derived datasets), and the whole flow (Prefect warm: writing three new versions, tombstones,
changelogs, manifests, and the scaffold's report.html / README.md card of each version).

  python bench/remove.py            # 100,000 documents
  python bench/remove.py --quick    # 20,000
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(base: Path, n: int, seed: int = 0) -> tuple[Path, Path, Path, Path]:
    import pyarrow as pa

    from corpora.generated import generated_schema, to_table
    from corpora.manifest import write_manifest
    from corpora.records import document_schema
    from corpora.shards import ShardWriter

    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "nu", "pe", "ri", "so", "tu", "va", "ze", "bra", "sti", "gon", "fel", "dar"]
    vocab = list(dict.fromkeys("".join(rng.choice(syll) for _ in range(rng.randint(2, 4))) for _ in range(9000)))[:5000]
    texts = []
    for i in range(n):
        if i > 10 and rng.random() < 0.01:
            words = texts[rng.randrange(i)].split()
            words = [rng.choice(vocab) if rng.random() < 0.03 else w for w in words]
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(120, 200))]
        texts.append(" ".join(words))
    ids = [f"doc-{i:07d}" for i in range(n)]
    urls = [f"https://site{rng.randrange(200)}.example.org/page/{i}" for i in range(n)]
    corpus = base / "corpus"
    schema = document_schema()
    w = ShardWriter(corpus / "data", schema, max_rows=50_000)
    w.write_table(pa.table({"id": ids, "text": texts, "source": ["bench"] * n, "url": urls, "created": [None] * n,
                            "metadata": [None] * n}, schema=schema))
    shards = w.close()
    write_manifest(corpus, pipeline="bench", config={}, config_hash="-", inputs=[], started="-", status="complete",
                   outputs={"data": [{**s.as_dict(), "path": f"data/{Path(s.path).name}"} for s in shards]})
    level1, level2 = base / "derived1", base / "derived2"
    d1 = [{"id": f"d1-{k:07d}", "text": f"derived {k}", "source": "bench", "parent_ids": [rng.choice(ids)]}
          for k in range(n // 4)]
    d2 = [{"id": f"d2-{k:07d}", "text": f"derived {k}", "source": "bench", "parent_ids": [rng.choice(d1)["id"]]}
          for k in range(n // 8)]
    import pyarrow.parquet as pq

    for folder, rows in ((level1, d1), (level2, d2)):
        (folder / "data").mkdir(parents=True)
        pq.write_table(to_table(rows, generated_schema()), folder / "data" / "part-00000.parquet")
    ids_file = base / "ids.txt"
    ids_file.write_text("\n".join(rng.sample(ids, n // 200)) + "\n")
    return corpus, level1, level2, ids_file


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.docs
    base = ROOT / "bench" / "_work" / "remove"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    t = time.monotonic()
    corpus, d1, d2, ids_file = build(base, n)
    print(f"built {n:,} documents + {n // 4:,} + {n // 8:,} derived rows in {time.monotonic() - t:.1f}s", flush=True)

    from filters import removal as rm
    from filters.forget_match import MatchSpec, NearDupConfig, read_id_list
    from filters.lineage import follow_lineage

    t0 = time.monotonic()
    tables, _ = rm.load_dataset(corpus)
    dtables = {"d1": rm.load_dataset(d1)[0], "d2": rm.load_dataset(d2)[0]}
    t1 = time.monotonic()
    hits, mstats = rm.match_dataset(tables, MatchSpec(domain=["site7.example.org"]), NearDupConfig(),
                                    read_id_list(ids_file))
    t2 = time.monotonic()
    hits, levels = follow_lineage({"": tables, **dtables}, hits)
    t3 = time.monotonic()
    removed = sum(len(v) for v in hits[""].values())
    derived = {d: sum(len(v) for v in hits.get(d, {}).values()) for d in ("d1", "d2")}

    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.config import load_config
    from flows.remove import RemoveConfig, remove_flow

    cfg = load_config(RemoveConfig, sets=[f"corpus={corpus}", f"ids={ids_file}", "match.domain=site7.example.org",
                                          f"derived=[{d1},{d2}]"])
    warm = load_config(RemoveConfig, sets=[f"corpus={d2}", "match.ids=[d2-0000000]", f"output={base / 'warm'}"])
    remove_flow(warm)  # starts the temporary Prefect server, so the timing below is the removal's
    t4 = time.monotonic()
    result = remove_flow(cfg)
    t5 = time.monotonic()
    assert result["stats"]["removed"]["rows"] == removed, (result["stats"]["removed"], removed)

    print()
    print(f"flows run remove, {n:,} documents (0.5% by id + 1 of 200 domains, near duplicates on), "
          f"two derived levels ({n // 4:,} + {n // 8:,} rows)")
    print(f"removed {removed:,} documents ({mstats['near_duplicates']:,} as near duplicates), derived: "
          f"level 1 {derived['d1']:,}, level 2 {derived['d2']:,} (lineage passes: {levels})")
    print(f"{'phase':34s} {'seconds':>8s} {'docs/s':>10s}")
    print("-" * 54)
    for name, sec in (("load (all kinds, 3 datasets)", t1 - t0), ("match + MinHash near-dup clusters", t2 - t1),
                      ("lineage (fixpoint, 2 levels)", t3 - t2), ("core total", t3 - t0),
                      ("write corpus@v2 (before report)", result["stats"]["seconds_write"]),
                      ("whole flow (3 new versions)", t5 - t4)):
        print(f"{name:34s} {sec:8.2f} {n / sec:10,.0f}")
    print()
    print(json.dumps({"docs": n, "removed": removed, "near_duplicates": mstats["near_duplicates"],
                      "derived_removed": derived, "core_s": round(t3 - t0, 2), "flow_s": round(t5 - t4, 2),
                      "flow_docs_per_s": round(n / (t5 - t4), 1)}))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
