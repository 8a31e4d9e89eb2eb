"""MinHash near-duplicate detection, side by side: ours vs datasketch vs datatrove's MinHash pipeline.

Corpus: real text from ../shared (Gutenberg books and time-slice texts, headers stripped). Each base document is
3-6 spans of 30-90 consecutive words from random places; 10% of the documents are planted variants of a base
document (word delete/substitute/insert at rates from 0 to 14%), in families of 1-3 variants. Every pair inside a
family gets its exact Jaccard (5-gram shingles of normalised words); every pair a method puts in one cluster is
scored with its exact Jaccard too, so precision does not rely on the planted labels.

  recall@0.8  : family pairs with J >= 0.8 that the method puts in one cluster
  FPR<0.5     : family pairs with J < 0.5 that it puts in one cluster
  precision   : clustered pairs with J >= 0.8 / clustered pairs outside the 0.5-0.8 gray zone
  strict prec.: clustered pairs with J >= 0.8 / all clustered pairs (transitive cluster members count too)

Methods (each in its own process; peak memory is the process tree's PSS (RSS with shared pages counted once),
sampled every 50 ms):
  ours           filters.dedup.minhash.near_duplicate_clusters over the texts in memory
  ours-pipeline  our datatrove steps (signatures, buckets, clusters, apply) on LocalPipelineExecutor, JSONL in/out
                 (datatrove's JsonlReader / JsonlWriter)
  ours-flow      the dedup stage `flows run dedup` runs (filters/dedup/stage.py DedupStage, MinHash only, flow
                 defaults otherwise): staged Parquet shards in, kept/rejected Parquet parts out, workers=1
  datasketch     MinHash.generator (affine64, xxh3 shingle hashes) + MinHashLSH(params=(14, 8)), union-find
  datatrove      MinhashDedupSignature/Buckets/Cluster/Filter as shipped (spaCy word tokenizer), on a subset
  datatrove-ws   the same pipeline with a whitespace tokenizer on the normalised text (its tokenizer dominates)
In-memory methods are timed from texts in memory; the pipelines from JSONL files to JSONL output, workers=1.
Memory of ours at scale: ours-pipeline on generated documents (no input files) at growing sizes.

  python bench/dedup.py                 # 200k documents (about 15 minutes on 2 shared cores)
  python bench/dedup.py --quick         # quick try (20k documents, about 2 minutes)
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "gutenberg"
NUM_BANDS, ROWS = 14, 8
RATES = [0.0, 0.002, 0.005, 0.008, 0.012, 0.016, 0.02, 0.03, 0.045, 0.07, 0.1, 0.14]


# --- corpus ------------------------------------------------------------------------------------------------

class WordPool:
    """All source words in one string plus word offsets (numpy): ~10x less memory than a list of str, so the
    scale runs measure the pipeline, not the text generator."""

    def __init__(self, texts):
        import numpy as np

        parts, lengths = [], []
        for text in texts:  # one file at a time: never a list of all words
            words = text.split()
            parts.append(" ".join(words))
            lengths.append(np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words)))
        self.blob = " ".join(parts)
        length = np.concatenate(lengths)
        self.starts = np.zeros(len(length), dtype=np.int64)
        np.cumsum(length[:-1] + 1, out=self.starts[1:])
        self.ends = self.starts + length

    def __len__(self) -> int:
        return len(self.starts)

    def span(self, s: int, length: int) -> str:
        return self.blob[self.starts[s]:self.ends[s + length - 1]]

    def word(self, k: int) -> str:
        return self.blob[self.starts[k]:self.ends[k]]


def _source_texts():
    for f in sorted((SHARED / "texts").glob("*.txt")):
        text = f.read_text(encoding="utf-8", errors="replace")
        start = re.search(r"\*\*\* ?START OF.*?\n", text)
        end = re.search(r"\*\*\* ?END OF", text)
        yield text[start.end() if start else 0: end.start() if end else len(text)]
    for f in sorted((SHARED / "slices").glob("*/*.txt")):
        yield f.read_text(encoding="utf-8", errors="replace")


def load_words() -> WordPool:
    if not SHARED.exists():
        sys.exit(f"shared data not found at {SHARED}: the benchmark needs ../shared (see README)")
    return WordPool(_source_texts())


def base_doc(words: WordPool, i: int, seed: int) -> str:
    rng = random.Random(seed * 1_000_003 + i)
    spans = []
    for _ in range(rng.randint(3, 6)):
        length = rng.randint(30, 90)
        spans.append(words.span(rng.randrange(len(words) - length), length))
    return "\n".join(spans)


def mutate(text: str, rate: float, rng: random.Random, words: WordPool) -> str:
    if rate == 0:
        return text
    n = len(words)
    lines = []
    for line in text.split("\n"):
        out = []
        for w in line.split(" "):
            r = rng.random()
            if r < rate / 3:
                continue
            if r < 2 * rate / 3:
                out.append(words.word(rng.randrange(n)))
            elif r < rate:
                out.extend((w, words.word(rng.randrange(n))))
            else:
                out.append(w)
        lines.append(" ".join(out))
    return "\n".join(lines)


def build_corpus(n_docs: int, seed: int, words: WordPool) -> tuple[list[dict], list[list[str]]]:
    """Documents (shuffled) and the planted families (lists of ids, source first)."""
    rng = random.Random(seed)
    n_planted = n_docs // 10
    n_base = n_docs - n_planted
    docs = [{"id": f"b{i:07d}", "text": base_doc(words, i, seed)} for i in range(n_base)]
    families: list[list[str]] = []
    made = 0
    for src in rng.sample(range(n_base), min(n_base, n_planted)):  # distinct sources: one family each
        if made >= n_planted:
            break
        fam = [docs[src]["id"]]
        for v in range(min(rng.randint(1, 3), n_planted - made)):
            vid = f"{docs[src]['id']}-v{v}"
            docs.append({"id": vid, "text": mutate(docs[src]["text"], rng.choice(RATES), rng, words)})
            fam.append(vid)
            made += 1
        families.append(fam)
    rng.shuffle(docs)
    return docs, families


def write_shards(docs: list[dict], folder: Path, shards: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    per = (len(docs) + shards - 1) // shards
    for s in range(shards):
        with open(folder / f"part-{s:03d}.jsonl", "w", encoding="utf-8") as fh:
            for d in docs[s * per:(s + 1) * per]:
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")


def write_parquet_shards(docs: list[dict], folder: Path, shards: int) -> None:
    """The same shards as `write_shards`, as the Parquet parts the flow stages its inputs into."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    per = (len(docs) + shards - 1) // shards
    for s in range(shards):
        part = docs[s * per:(s + 1) * per]
        table = pa.table({"id": [d["id"] for d in part], "text": [d["text"] for d in part]})
        pq.write_table(table, folder / f"part-{s:03d}.parquet", compression="zstd")


def read_corpus(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("part-*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh)
    return out


# --- methods (run in a child process) ----------------------------------------------------------------------

class UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        p = self.parent.setdefault(x, x)
        if p != x:
            p = self.parent[x] = self.find(p)
        return p

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def run_ours(work: Path) -> tuple[float, dict[str, str], int]:
    from filters.dedup.minhash import MinHashConfig, near_duplicate_clusters

    docs = read_corpus(work / "corpus")
    texts, ids = [d["text"] for d in docs], [d["id"] for d in docs]
    t0 = time.perf_counter()
    res = near_duplicate_clusters(texts, ids=ids, config=MinHashConfig(num_bands=NUM_BANDS, rows_per_band=ROWS))
    seconds = time.perf_counter() - t0
    labels = {ids[i]: ids[res.root[i]] for i in range(len(ids)) if res.size[i] > 1}
    return seconds, labels, len(docs)


def run_datasketch(work: Path) -> tuple[float, dict[str, str], int]:
    import xxhash
    from datasketch import MinHash, MinHashLSH

    from filters.dedup.textnorm import normalize_words

    docs = read_corpus(work / "corpus")
    t0 = time.perf_counter()

    def shingles():
        for d in docs:
            w = normalize_words(d["text"])
            yield [" ".join(w[j:j + 5]).encode() for j in range(max(1, len(w) - 4))] if w else []

    lsh = MinHashLSH(num_perm=NUM_BANDS * ROWS, params=(NUM_BANDS, ROWS))
    uf = UnionFind()
    for d, m in zip(docs, MinHash.generator(shingles(), num_perm=NUM_BANDS * ROWS, seed=1, scheme="affine64",
                                            hashfunc=xxhash.xxh3_64_intdigest)):
        for other in lsh.query(m):
            uf.union(d["id"], other)
        lsh.insert(d["id"], m)
    seconds = time.perf_counter() - t0
    labels = {k: uf.find(k) for k in uf.parent}
    return seconds, labels, len(docs)


def _executor(pipeline, tasks, logs):
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=str(logs), skip_completed=False)


def _read_output_labels(folders: list[Path], id_key: str, cluster_key: str, size_key: str | None) -> dict:
    labels = {}
    for folder in folders:
        for f in sorted(folder.glob("*.jsonl")):
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    d = json.loads(line)
                    meta = d.get("metadata", {})
                    c = meta.get(cluster_key)
                    if c is None or c == -1 or (size_key and meta.get(size_key, 1) <= 1):
                        continue
                    labels[d[id_key]] = str(c)
    return labels


def run_ours_pipeline(work: Path) -> tuple[float, dict[str, str], int]:
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from filters.dedup.steps import DedupApply, DedupBuckets, DedupClusters, DedupSignatures

    out = work / "ours-pipeline"
    shutil.rmtree(out, ignore_errors=True)
    corpus = str(work / "corpus")
    shards = len(list((work / "corpus").glob("part-*.jsonl")))
    t0 = time.perf_counter()
    _executor([JsonlReader(corpus), DedupSignatures(out / "mh", "minhash")], shards, out / "logs1").run()
    _executor([DedupBuckets(out / "mh")], 2, out / "logs2").run()
    _executor([DedupClusters(out / "mh")], 1, out / "logs3").run()
    _executor([JsonlReader(corpus),
               DedupApply(out / "mh", drop=True, exclusion_writer=JsonlWriter(str(out / "removed"),
                                                                            compression=None)),
               JsonlWriter(str(out / "kept"), compression=None)], shards, out / "logs4").run()
    seconds = time.perf_counter() - t0
    labels = _read_output_labels([out / "kept", out / "removed"], "id", "dup_cluster_id", "dup_cluster_size")
    return seconds, labels, int((work / "count").read_text())


def run_ours_flow(work: Path) -> tuple[float, dict[str, str], int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from filters.dedup.config import DedupConfig
    from filters.dedup.stage import DedupStage
    from filters.execution import ExecutorConfig

    out = work / "ours-flow"
    shutil.rmtree(out, ignore_errors=True)
    shards = [[p] for p in sorted((work / "corpus-parquet").glob("part-*.parquet"))]
    off = {"enabled": False}
    cfg = DedupConfig(url=off, exact=off, paragraph=off, minhash={"num_bands": NUM_BANDS, "rows_per_band": ROWS})
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    t0 = time.perf_counter()
    res = DedupStage(shards, out, cfg, ExecutorConfig(), schema, log=lambda msg: None).run()
    seconds = time.perf_counter() - t0
    labels, n = {}, 0
    for part in [p for s in res.kept + res.rejected for p in s]:
        t = pq.read_table(part, columns=["id", "dup_cluster_id", "dup_cluster_size"]).to_pydict()
        n += len(t["id"])
        for i, c, size in zip(t["id"], t["dup_cluster_id"], t["dup_cluster_size"]):
            if size is not None and size > 1:
                labels[i] = c
    return seconds, labels, n


class _WhitespaceTokenizer:
    def word_tokenize(self, text: str) -> list[str]:
        return text.split()


def run_datatrove(work: Path, whitespace: bool) -> tuple[float, dict[str, str], int]:
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    name = "datatrove-ws" if whitespace else "datatrove"
    corpus_dir = work / ("corpus" if whitespace else "corpus-subset")
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    config = MinhashConfig(n_grams=5, num_buckets=NUM_BANDS, hashes_per_bucket=ROWS, hash_config=HashConfig(64))
    sig = MinhashDedupSignature(output_folder=str(out / "sigs"), config=config, language="en")
    if whitespace:
        sig.word_tokenizer = _WhitespaceTokenizer()
    shards = len(list(corpus_dir.glob("part-*.jsonl")))
    t0 = time.perf_counter()
    _executor([JsonlReader(str(corpus_dir)), sig], shards, out / "logs1").run()
    _executor([MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=config)], NUM_BANDS,
              out / "logs2").run()
    _executor([MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=config, save_cluster_id=True)],
              1, out / "logs3").run()
    _executor([JsonlReader(str(corpus_dir)),
               MinhashDedupFilter(str(out / "remove"), load_cluster_ids=True,
                                  exclusion_writer=JsonlWriter(str(out / "removed"), compression=None)),
               JsonlWriter(str(out / "kept"), compression=None)], shards, out / "logs4").run()
    seconds = time.perf_counter() - t0
    labels = _read_output_labels([out / "kept", out / "removed"], "id", "minhash_cluster_id", None)
    n = sum(1 for f in corpus_dir.glob("part-*.jsonl") for _ in open(f))
    return seconds, labels, n


def run_scale(work: Path, n_docs: int, seed: int) -> tuple[float, dict, int]:
    """ours-pipeline on documents generated on the fly (nothing held in memory but the pipeline itself)."""
    from datatrove.data import Document
    from datatrove.pipeline.base import PipelineStep

    from filters.dedup.steps import DedupApply, DedupBuckets, DedupClusters, DedupSignatures

    words = load_words()
    shards = 4

    class Generated(PipelineStep):
        name = "generated documents"

        def run(self, data=None, rank=0, world_size=1):
            per = (n_docs + world_size - 1) // world_size
            rng = random.Random(seed + rank)
            for i in range(rank * per, min(n_docs, (rank + 1) * per)):
                text = base_doc(words, i, seed)
                if i % 10 == 9:  # every tenth document: a near-duplicate of the one before it
                    text = mutate(base_doc(words, i - 1, seed), 0.01, rng, words)
                yield Document(text=text, id=f"g{i:08d}")

    class Drain(PipelineStep):
        name = "drain"

        def run(self, data=None, rank=0, world_size=1):
            for _ in data or []:
                pass
            return
            yield

    out = work / f"scale-{n_docs}"
    shutil.rmtree(out, ignore_errors=True)
    import psutil

    generator_mb = psutil.Process().memory_full_info().pss / 2 ** 20  # interpreter, imports, word pool
    t0 = time.perf_counter()
    _executor([Generated(), DedupSignatures(out / "mh", "minhash")], shards, out / "logs1").run()
    _executor([DedupBuckets(out / "mh")], 2, out / "logs2").run()
    _executor([DedupClusters(out / "mh")], 1, out / "logs3").run()
    _executor([Generated(), DedupApply(out / "mh", drop=True), Drain()], shards, out / "logs4").run()
    seconds = time.perf_counter() - t0
    stats = json.loads((out / "mh" / "clusters.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return seconds, {"removed": stats["removed"], "generator_mb": generator_mb}, n_docs


def child(method: str, work: Path, arg: int, seed: int) -> None:
    if method == "ours":
        seconds, labels, n = run_ours(work)
    elif method == "ours-pipeline":
        seconds, labels, n = run_ours_pipeline(work)
    elif method == "ours-flow":
        seconds, labels, n = run_ours_flow(work)
    elif method == "datasketch":
        seconds, labels, n = run_datasketch(work)
    elif method in ("datatrove", "datatrove-ws"):
        seconds, labels, n = run_datatrove(work, whitespace=method == "datatrove-ws")
    elif method == "scale":
        seconds, labels, n = run_scale(work, arg, seed)
    else:
        raise SystemExit(f"unknown method {method}")
    (work / f"result-{method}-{arg}.json").write_text(json.dumps({"seconds": seconds, "docs": n, "labels": labels}))


def peak_rss_of(cmd: list[str], log: Path) -> tuple[int, float]:
    """Run `cmd`, sampling the memory (PSS) of its whole process tree; (peak bytes, wall seconds)."""
    import psutil

    with open(log, "w") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        peak = 0
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                total = 0
                try:
                    procs = [ps] + ps.children(recursive=True)
                except psutil.Error:
                    procs = [ps]
                for p in procs:  # PSS: pages shared by forked helpers count once in total
                    try:
                        total += p.memory_full_info().pss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        th.start()
        rc = proc.wait()
        done.set()
        th.join()
    if rc != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{cmd} failed (rc {rc}); log {log}:\n{tail}")
    return peak, time.perf_counter() - t0


# --- evaluation --------------------------------------------------------------------------------------------

class ShingleCache:
    def __init__(self, texts: dict[str, str]):
        self.texts = texts
        self.cache: dict[str, frozenset] = {}

    def get(self, doc_id: str) -> frozenset:
        s = self.cache.get(doc_id)
        if s is None:
            from filters.dedup.textnorm import shingle_set

            s = self.cache[doc_id] = frozenset(hash(x) for x in shingle_set(self.texts[doc_id], 5))
        return s

    def jaccard(self, a: str, b: str) -> float:
        x, y = self.get(a), self.get(b)
        return len(x & y) / len(x | y) if (x or y) else 1.0


def evaluate(labels: dict[str, str], fam_pairs: list[tuple[str, str, float]], cache: ShingleCache,
             universe: set[str] | None = None) -> dict:
    pairs = [(a, b, j) for a, b, j in fam_pairs if universe is None or (a in universe and b in universe)]
    high = [(a, b) for a, b, j in pairs if j >= 0.8]
    low = [(a, b) for a, b, j in pairs if j < 0.5]

    def together(a, b):
        return a in labels and b in labels and labels[a] == labels[b]

    clusters: dict[str, list[str]] = {}
    for k, c in labels.items():
        clusters.setdefault(c, []).append(k)
    tp = gray = fp = 0
    for members in clusters.values():
        members.sort()
        if len(members) > 40:  # a giant cluster would be a failure in itself; sample its pairs
            members = members[:40]
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                jac = cache.jaccard(members[i], members[j])
                if jac >= 0.8:
                    tp += 1
                elif jac >= 0.5:
                    gray += 1
                else:
                    fp += 1
    return {
        "recall@0.8": sum(together(a, b) for a, b in high) / max(1, len(high)),
        "fpr<0.5": sum(together(a, b) for a, b in low) / max(1, len(low)),
        "precision": tp / max(1, tp + fp),
        "strict_precision": tp / max(1, tp + fp + gray),
        "clustered_pairs": tp + gray + fp,
        "largest_cluster": max((len(m) for m in clusters.values()), default=0),
        "pairs_high": len(high), "pairs_low": len(low),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work", default="/tmp/dedup-bench")
    ap.add_argument("--methods", default="ours,ours-pipeline,ours-flow,datasketch,datatrove-ws,datatrove")
    ap.add_argument("--datatrove-subset", type=int, default=10_000,
                    help="documents for datatrove as shipped (its spaCy tokenizer runs ~100 docs/s here)")
    ap.add_argument("--scale", default="100000,300000,1000000",
                    help="sizes for the memory curve of ours-pipeline ('' to skip)")
    ap.add_argument("--quick", action="store_true",
                    help="a quick try: 20k documents, datatrove subset 2k, memory curve at 20k and 50k")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--arg", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.docs, args.datatrove_subset, args.scale = 20_000, 2_000, "20000,50000"
    work = Path(args.work)
    if args.child:
        child(args.child, work, args.arg, args.seed)
        return

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    words = load_words()
    docs, families = build_corpus(args.docs, args.seed, words)
    write_shards(docs, work / "corpus", args.shards)
    if "ours-flow" in args.methods.split(","):
        write_parquet_shards(docs, work / "corpus-parquet", args.shards)
    write_shards(docs[: args.datatrove_subset], work / "corpus-subset", 1)
    (work / "count").write_text(str(len(docs)))
    texts = {d["id"]: d["text"] for d in docs}
    cache = ShingleCache(texts)
    fam_pairs = [(f[i], f[j], cache.jaccard(f[i], f[j])) for f in families
                 for i in range(len(f)) for j in range(i + 1, len(f))]
    n_high = sum(j >= 0.8 for *_, j in fam_pairs)
    n_low = sum(j < 0.5 for *_, j in fam_pairs)
    print(f"corpus: {len(docs):,} documents ({sum(map(len, texts.values())) / 1e6:.0f} M chars, "
          f"{len(families):,} planted families, {len(fam_pairs):,} family pairs: {n_high:,} with J>=0.8, "
          f"{n_low:,} with J<0.5) built in {time.perf_counter() - t0:.0f}s", flush=True)

    rows = []
    for method in [m for m in args.methods.split(",") if m]:
        print(f"running {method} ...", flush=True)
        cmd = [sys.executable, __file__, "--child", method, "--work", str(work), "--seed", str(args.seed)]
        peak, _ = peak_rss_of(cmd, work / f"log-{method}.txt")
        res = json.loads((work / f"result-{method}-0.json").read_text())
        universe = set(d["id"] for d in docs[: args.datatrove_subset]) if method == "datatrove" else None
        ev = evaluate(res["labels"], fam_pairs, cache, universe)
        rows.append({"method": method, "docs": res["docs"], "seconds": res["seconds"],
                     "docs_per_s": res["docs"] / res["seconds"], "peak_rss_mb": peak / 2 ** 20, **ev})
        print(json.dumps(rows[-1]), flush=True)

    scale = []
    for n in [int(x) for x in args.scale.split(",") if x]:
        print(f"scale: ours-pipeline on {n:,} generated documents ...", flush=True)
        cmd = [sys.executable, __file__, "--child", "scale", "--arg", str(n), "--work", str(work),
               "--seed", str(args.seed)]
        peak, _ = peak_rss_of(cmd, work / f"log-scale-{n}.txt")
        res = json.loads((work / f"result-scale-{n}.json").read_text())
        scale.append({"docs": n, "seconds": res["seconds"], "docs_per_s": n / res["seconds"],
                      "peak_rss_mb": peak / 2 ** 20, "removed": res["labels"]["removed"],
                      "generator_mb": res["labels"]["generator_mb"]})
        print(json.dumps(scale[-1]), flush=True)

    print_table(rows, scale, args)
    (work / "results.json").write_text(json.dumps({"rows": rows, "scale": scale}, indent=2))


def print_table(rows: list[dict], scale: list[dict], args) -> None:
    base = next((r["docs_per_s"] for r in rows if r["method"] == "datasketch"), None)
    print(f"\nMinHash dedup, {NUM_BANDS} bands x {ROWS} rows, word 5-grams, 1 worker "
          f"(datatrove as shipped on the first {args.datatrove_subset:,} documents)")
    head = (f"{'method':<15}{'docs':>9}{'seconds':>9}{'docs/s':>9}{'vs ds':>7}{'peak RSS':>10}"
            f"{'recall@0.8':>11}{'FPR<0.5':>9}{'precision':>10}{'strict':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = f"{r['docs_per_s'] / base:.1f}x" if base else "-"
        print(f"{r['method']:<15}{r['docs']:>9,}{r['seconds']:>9.1f}{r['docs_per_s']:>9,.0f}{ratio:>7}"
              f"{r['peak_rss_mb']:>8,.0f}MB{r['recall@0.8']:>11.3f}{r['fpr<0.5']:>9.3f}{r['precision']:>10.3f}"
              f"{r['strict_precision']:>8.3f}")
    if scale:
        print("\nours-pipeline memory by corpus size (generated documents, 4 shards, 1 worker)")
        for s in scale:
            print(f"  {s['docs']:>10,} docs  {s['seconds']:>7.1f}s  {s['docs_per_s']:>7,.0f} docs/s  "
                  f"peak {s['peak_rss_mb']:>6,.0f} MB (of which {s['generator_mb']:,.0f} MB interpreter, imports "
                  "and the text generator's word pool)")
        if len(scale) >= 2 and scale[-1]["docs"] < 1_000_000:
            a, b = scale[-2], scale[-1]
            slope = max(0.0, (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["docs"] - a["docs"]))
            print(f"  extrapolated to 1,000,000 docs (line through the last two points, never below the last): "
                  f"{b['peak_rss_mb'] + slope * (1_000_000 - b['docs']):,.0f} MB")


if __name__ == "__main__":  # datatrove's LocalPipelineExecutor may start processes (forkserver): keep this guard
    main()
