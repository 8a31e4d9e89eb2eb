"""Start-up profile of `flows run <pipeline>` on a tiny input, and `flows run dedup` against a plain datasketch
script on the same planted documents (issue 31).

Each run is a child process: this file's `--child` mode imports `flows.cli` and runs the real `run` command
(same code as `flows run`; `-v` off), with timing hooks installed from outside (wrappers around
configure_console, get_pipeline/load_config, check_output/preflight, the flow call, Run.start/publish/finish and
every Prefect task's function); no production code changes. Stages (wall seconds):

  python start     spawn -> first line of the child (interpreter + site)
  import cli       `import flows.cli` (typer, config, registry)
  console setup    configure_console (imports prefect and datatrove's logging)
  config           get_pipeline (imports the pipeline module) + load_config
  preflight        check_output + the pipeline's preflight
  prefect start    waiting for the early temporary API (if any) + flow call -> the flow body's first line
                   (temporary API server, flow run creation)
  reading          flow body -> first task starts (staging inputs; for dolma: the plan task is counted here)
  work             first task start -> last task end, less publish/report done inside tasks
  publish          Run.publish calls
  report           Run.finish (stats, manifest, report.html + card, summary, artifact)
  flow other       the rest of the flow body + Prefect's bookkeeping between tasks
  shutdown         flow return -> process exit (temporary server stop, atexit)

Imports: `python -X importtime` of the same child, top-level modules by cumulative time (they overlap the
stages above: most are imported lazily inside them).

Columns (same run, alternating): `before` = this checkout with FLOWS_EARLY_API=0 FLOWS_REUSE_SERVER=0 (the
temporary API started by get_client inside the flow call, as before issue 31's start-up work), `early` = the
default (the temporary API process spawned at the start of `flows run`, beside config/preflight/imports),
`reuse` = a running `flows server` (started here in a temporary FLOWS_SERVER_DIR, before the timings) that
`flows run` finds and uses instead of a temporary API.

  python bench/startup.py                      # profile dedup + dolma, dedup vs datasketch on 7,400 docs
  python bench/startup.py --compare /work/startup-base   # and the same children from another checkout
  (git worktree add /work/startup-base <base commit>; --repeat N keeps the fastest of N runs per column)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["python start", "import cli", "console setup", "config", "preflight", "prefect start", "reading",
          "work", "publish", "report", "flow other", "shutdown"]


# --- child: one `flows run` with hooks ----------------------------------------------------------------------

def child(root: str, events_file: str, argv: list[str]) -> None:
    t_first = time.time()
    sys.path.insert(0, root)
    os.chdir(root)
    ev: dict = {"t_first": t_first, "publish": [], "finish": [], "tasks": []}

    def mark(key):
        ev[key] = time.time()

    def timed(obj, name, key):  # wrap obj.name, record (start, end) intervals under ev[key]
        real = getattr(obj, name)

        def wrapper(*a, **k):
            s = time.time()
            try:
                return real(*a, **k)
            finally:
                ev.setdefault(key, []).append((s, time.time()))
        wrapper.__wrapped__ = real
        setattr(obj, name, wrapper)

    import flows.cli as cli
    mark("cli_imported")
    import flows.config
    import flows.registry
    import flows.reporting

    timed(flows.reporting, "configure_console", "console")
    real_get = cli.get_pipeline

    def get_pipeline(name):
        s = time.time()
        p = real_get(name)
        ev.setdefault("config", []).append((s, time.time()))
        return _hook_pipeline(p, ev)
    cli.get_pipeline = get_pipeline
    timed(cli, "load_config", "config")
    if hasattr(cli, "_EarlyAPI"):
        timed(cli._EarlyAPI, "attach", "attach")
    import corpora.plan
    timed(corpora.plan, "check_output", "preflight")
    real_flow_for = cli._flow_for

    def flow_for(p, cfg):
        f = real_flow_for(p, cfg)

        def call(*a, **k):
            s = time.time()
            try:
                return f(*a, **k)
            finally:
                ev["flow_call"] = (s, time.time())
        return call
    cli._flow_for = flow_for
    from flows.scaffold import Run
    real_start = Run.start.__func__

    def start(cls, *a, **k):
        ev.setdefault("run_start", time.time())
        return real_start(cls, *a, **k)
    Run.start = classmethod(start)
    timed(Run, "publish", "publish")
    timed(Run, "finish", "finish")
    rc = 0
    try:
        cli.app(argv, standalone_mode=False)
    except SystemExit as e:
        rc = e.code or 0
    except Exception as e:  # noqa: BLE001 - reported, the parent fails the bench
        print(f"child error: {e!r}", file=sys.stderr)
        rc = 1
    ev["rc"] = rc
    Path(events_file).write_text(json.dumps(ev))
    sys.exit(rc)


def _hook_pipeline(p, ev):
    """Preflight timing and every Prefect task of the flow's module: wraps task.fn (the task stays the same
    Prefect task: states, retries, caching unchanged)."""
    if p.preflight is not None and not getattr(p.preflight, "_bench", False):
        real = p.preflight

        def pre(cfg):
            s = time.time()
            try:
                return real(cfg)
            finally:
                ev.setdefault("preflight", []).append((s, time.time()))
        pre._bench = True
        import dataclasses
        p = dataclasses.replace(p, preflight=pre)  # a copy for this child's CLI; the registry keeps its own
    from prefect import Task
    mod = sys.modules[p.flow.fn.__module__]
    for name in dir(mod):
        t = getattr(mod, name)
        if isinstance(t, Task) and not getattr(t.fn, "_bench", False):
            real_fn = t.fn

            def fn(*a, __real=real_fn, __name=t.name, **k):
                s = time.time()
                try:
                    return __real(*a, **k)
                finally:
                    ev["tasks"].append((__name, s, time.time()))
            import functools
            functools.update_wrapper(fn, real_fn)
            fn._bench = True
            t.fn = fn
    return p


def _within(iv, a, b) -> float:
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in iv)


def stages_of(ev: dict, t_spawn: float, t_exit: float) -> dict[str, float]:
    iv = lambda k: ev.get(k, [])  # noqa: E731
    total = lambda k: sum(e - s for s, e in iv(k))  # noqa: E731
    fs, fe = ev["flow_call"]
    body = ev.get("run_start", fs)
    tasks = ev["tasks"]
    t0 = min([s for _, s, _ in tasks], default=body)
    t1 = max([e for _, _, e in tasks], default=t0)
    pub, fin = total("publish"), total("finish")
    work = (t1 - t0) - _within(iv("publish") + iv("finish"), t0, t1)
    reading = t0 - body
    out = {
        "python start": ev["t_first"] - t_spawn,
        "import cli": ev["cli_imported"] - ev["t_first"],
        "console setup": total("console"),
        "config": total("config"),
        "preflight": total("preflight"),
        "prefect start": body - fs + total("attach"),
        "reading": reading,
        "work": work,
        "publish": pub,
        "report": fin,
    }
    out["flow other"] = (fe - fs) + total("attach") - sum(out[k] for k in ("prefect start", "reading", "work", "publish", "report"))
    out["shutdown"] = t_exit - fe
    return out


# --- parent -------------------------------------------------------------------------------------------------

def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_flows(root: Path, argv: list[str], work: Path, importtime: bool = False, extra_env: dict | None = None
              ) -> dict:
    events = work / "events.json"
    env = {**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "COLUMNS": "200",
           **(extra_env or {})}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + [
        str(Path(__file__).resolve()), "--child", str(root), str(events), "--"] + argv
    t_spawn = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    t_exit = time.time()
    if proc.returncode != 0 or not events.exists():
        sys.exit(f"flows {' '.join(argv)} failed (rc {proc.returncode}) in {root}:\n{proc.stderr[-3000:]}")
    ev = json.loads(events.read_text())
    res = {"wall": t_exit - t_spawn, "stages": stages_of(ev, t_spawn, t_exit), "load": load()}
    if importtime:
        res["imports"] = top_imports(proc.stderr)
    return res


def top_imports(stderr: str, n: int = 15) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time: each time a package is imported from outside itself (by
    our code or by another package), its cumulative time counts once for it (nested costs of other packages
    inside it are not subtracted: the columns overlap, like -X importtime's own)."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((len(m.group(3)), m.group(4).split(".")[0], int(m.group(2))))
    by_top: dict[str, float] = {}
    stack: list[tuple[int, str]] = []  # reversed output: a parent comes before its children
    for indent, top, cum in reversed(rows):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack or stack[-1][1] != top:
            outer = any(t == top for _, t in stack)
            if not outer:
                by_top[top] = by_top.get(top, 0.0) + cum / 1e6
        stack.append((indent, top))
    return sorted(by_top.items(), key=lambda kv: -kv[1])[:n]


DATASKETCH_SCRIPT = r'''
import json, sys, time
t0 = time.time()
import xxhash
from datasketch import MinHash, MinHashLSH
sys.path.insert(0, sys.argv[3])
from filters.dedup.textnorm import normalize_words
from pathlib import Path
docs = []
for f in sorted(Path(sys.argv[1]).glob("part-*.jsonl")):
    docs.extend(json.loads(l) for l in open(f, encoding="utf-8"))
def shingles():
    for d in docs:
        w = normalize_words(d["text"])
        yield [" ".join(w[j:j + 5]).encode() for j in range(max(1, len(w) - 4))] if w else []
lsh = MinHashLSH(num_perm=112, params=(14, 8))
parent = {}
def find(x):
    while parent.setdefault(x, x) != x:
        parent[x] = parent[parent[x]]; x = parent[x]
    return x
for d, m in zip(docs, MinHash.generator(shingles(), num_perm=112, seed=1, scheme="affine64",
                                        hashfunc=xxhash.xxh3_64_intdigest)):
    for o in lsh.query(m):
        ra, rb = find(d["id"]), find(o)
        if ra != rb: parent[max(ra, rb)] = min(ra, rb)
    lsh.insert(d["id"], m)
dup = {k for k in parent if find(k) != k}
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for d in docs:
        if d["id"] not in dup: out.write(json.dumps(d) + "\n")
print(len(docs), len(dup))
'''


def planted(work: Path, n: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    import dedup as bd  # bench/dedup.py: the planted-family corpus

    folder = work / "planted"
    docs, _ = bd.build_corpus(n, 7, bd.load_words())
    bd.write_shards(docs, folder, 4)
    return folder


def tiny(work: Path) -> Path:
    folder = work / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "part-000.jsonl", "w", encoding="utf-8") as fh:
        for i in range(20):
            fh.write(json.dumps({"id": f"d{i}", "text": f"Document {i}. " + "A short line of plain words. " * 12})
                     + "\n")
    return folder


def table(title: str, cols: dict[str, dict]) -> list[str]:
    names = list(cols)
    lines = [title, f"{'stage':16s}" + "".join(f"{n:>22s}" for n in names)]
    for st in STAGES:
        cells = []
        for n in names:
            r = cols[n]
            s = r["stages"][st]
            cells.append(f"{s:9.2f} s {100 * s / r['wall']:6.1f}%    ")
        lines.append(f"{st:16s}" + "".join(f"{c:>22s}" for c in cells))
    lines.append(f"{'wall':16s}" + "".join(f"{cols[n]['wall']:9.2f} s {'':11s}" for n in names))
    lines.append(f"{'load avg':16s}" + "".join(f"{cols[n]['load']:>22s}" for n in names))
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        i = sys.argv.index("--")
        child(sys.argv[2], sys.argv[3], sys.argv[i + 1:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", help="another checkout (e.g. a git worktree of the base commit): same runs there")
    ap.add_argument("--docs", type=int, default=7400)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.txt"))
    ap.add_argument("--skip-dolma", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="stage-table runs per column; the fastest is kept")
    args = ap.parse_args()
    off = {"FLOWS_EARLY_API": "0", "FLOWS_REUSE_SERVER": "0"}
    lines = [f"bench/startup.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores; "
             f"load average at start {load()}", ""]
    sys.path.insert(0, str(ROOT))
    from flows.server_cli import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server_dir = work / "flows-server"
        port = _free_port()
        start_server(server_dir, port=port, ui=False, timeout_s=150)
        try:
            reuse = {"FLOWS_SERVER_DIR": str(server_dir), "FLOWS_EARLY_API": "0"}
            cols_of = {"before": (ROOT, {**off, "FLOWS_SERVER_DIR": str(work / "none")}),
                       "early": (ROOT, {"FLOWS_SERVER_DIR": str(work / "none")}),
                       "reuse": (ROOT, reuse)}
            if args.compare:
                cols_of["base"] = (Path(args.compare).resolve(), {"FLOWS_SERVER_DIR": str(work / "none")})
            lines += _runs(args, work, cols_of)
        finally:
            stop_server(server_dir)
    lines.append(f"load average at end {load()}")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(args, work: Path, cols_of: dict) -> list[str]:
    lines: list[str] = []
    small = tiny(work)
    pipelines = [("dedup", ["run", "dedup", "--input", str(small)])]
    if not args.skip_dolma:
        pipelines.append(("dolma", ["run", "dolma"]))
    for name, argv in pipelines:
        cols, imports = {}, {}
        for label in ("early",):  # imports: the default path only (the variants import the same modules)
            root, env = cols_of[label]
            w = work / f"{name}-{label}-imports"
            w.mkdir()
            imports[label] = run_flows(root, argv + ["--output", str(w / "out")], w, importtime=True,
                                       extra_env=env)["imports"]
        # the stage table from runs without -X importtime (it costs time itself); columns alternate, and with
        # --repeat the fastest run of each is kept (the least disturbed by other load)
        for rep in range(args.repeat):
            for label, (root, env) in cols_of.items():
                w = work / f"{name}-{label}-{rep}"
                w.mkdir()
                r = run_flows(root, argv + ["--output", str(w / "out")], w, extra_env=env)
                if label not in cols or r["wall"] < cols[label]["wall"]:
                    cols[label] = r
        lines += table(f"flows run {name} (tiny input): stage, seconds, share of wall", cols) + [""]
        for label, imp in imports.items():
            lines.append(f"imports of flows run {name} [{label}], -X importtime, top-level package, cumulative s:")
            lines += [f"  {mod:28s} {s:6.2f}" for mod, s in imp]
        lines.append("")
    corpus = planted(work, args.docs)
    cols = {}
    ds_line = []
    for label, (root, env) in cols_of.items():
        w = work / f"planted-{label}"
        w.mkdir()
        cols[label] = run_flows(root, ["run", "dedup", "--input", str(corpus), "--output", str(w / "out")], w,
                                extra_env=env)
        t = time.time()
        proc = subprocess.run([sys.executable, "-c", DATASKETCH_SCRIPT, str(corpus), str(w / "ds.jsonl"),
                               str(root)], capture_output=True, text=True)
        ds = time.time() - t
        if proc.returncode:
            sys.exit(proc.stderr[-2000:])
        ds_line.append(f"  [{label}] flows {cols[label]['wall']:.2f} s; plain datasketch script right after "
                       f"(same docs, MinHash 14x8 + LSH + union-find + JSONL out) {ds:.2f} s "
                       f"({proc.stdout.split()[1]} dups), load {load()}; flows/datasketch = "
                       f"{cols[label]['wall'] / ds:.2f}x")
    lines += table(f"flows run dedup on {args.docs:,} planted docs", cols) + ds_line + [""]
    return lines


if __name__ == "__main__":
    main()
