"""`flows server start|stop|status` against real Prefect servers (SQLite, and PostgreSQL started here), each on a
free port with its own PREFECT_HOME in a temporary folder; every process is stopped by a finalizer.

The helpers here (`free_port`, `server`, `worker`) are used by tests/test_deployments.py and tests/test_scale_out.py.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.server_cli import _group_alive, healthy, server_status, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
PREFECT_BIN = Path(sys.executable).with_name("prefect")
needs_prefect_cli = pytest.mark.skipif(not PREFECT_BIN.exists(), reason=f"no prefect command at {PREFECT_BIN}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(state_dir: Path, extra_env: dict | None = None):
    """A real Prefect server on a free port, PREFECT_HOME = state_dir; always stopped."""
    try:
        state = start_server(state_dir, port=free_port(), ui=False, timeout_s=150, extra_env=extra_env)
    except RuntimeError as e:
        stop_server(state_dir)
        pytest.fail(f"Prefect server did not start: {e}")
    try:
        yield state
    finally:
        with contextlib.suppress(Exception):  # send buffered run logs while the server still answers
            from prefect.logging.handlers import APILogHandler

            APILogHandler.flush()
        stop_server(state_dir)


@contextlib.contextmanager
def api(url: str):
    """Point this process's Prefect client at `url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def _end_group(proc: subprocess.Popen) -> None:
    """A worker ends on SIGINT (it may sit out SIGTERM while retrying); its flow-run processes share its group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def worker(pool: str, url: str, home: Path, log: Path, extra_env: dict | None = None):
    """`prefect worker start --pool <pool>` (a process worker) in its own process group; always ended."""
    env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_HOME": str(home), "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           **(extra_env or {})}
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(PREFECT_BIN), "worker", "start", "--pool", pool, "--type", "process"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=str(ROOT), start_new_session=True)
    try:
        yield proc
    finally:
        _end_group(proc)


# ---- the server commands ------------------------------------------------------------------------------------
@needs_prefect_cli
def test_server_start_status_port_taken_stop(tmp_path):
    from flows.cli import app

    runner = CliRunner()
    state_dir = tmp_path / "state"
    port = free_port()
    r = runner.invoke(app, ["server", "start", "--port", str(port), "--state-dir", str(state_dir), "--no-ui"])
    try:
        assert r.exit_code == 0, r.output
        assert f"http://127.0.0.1:{port}/api" in r.output and "export PREFECT_API_URL=" in r.output
        state = server_status(state_dir)
        assert state and state["healthy"] and state["host"] == "127.0.0.1"
        assert (state_dir / "prefect.db").is_file()  # SQLite in the state dir by default
        pid = state["pid"]

        r = runner.invoke(app, ["server", "status", "--state-dir", str(state_dir)])
        assert r.exit_code == 0 and "healthy" in r.output and str(pid) in r.output

        # the same state dir again: refused, the running one untouched
        r = runner.invoke(app, ["server", "start", "--port", str(free_port()), "--state-dir", str(state_dir)])
        assert r.exit_code == 2 and "already running" in r.output
        # another state dir on the taken port: one clear line
        r = runner.invoke(app, ["server", "start", "--port", str(port), "--state-dir", str(tmp_path / "other")])
        assert r.exit_code == 2 and f"port {port} on 127.0.0.1 is already in use" in r.output
        assert len(r.output.strip().splitlines()) == 1

        r = runner.invoke(app, ["server", "stop", "--state-dir", str(state_dir)])
        assert r.exit_code == 0 and "stopped" in r.output
        assert not (state_dir / "server.json").exists()
        assert not _group_alive(pid)  # no live process of the whole group (zombies hold nothing)
        assert not healthy(state["url"], timeout=1)
        r = runner.invoke(app, ["server", "status", "--state-dir", str(state_dir)])
        assert r.exit_code == 1 and "not running" in r.output
    finally:
        stop_server(state_dir)


def test_stale_state_file_is_not_a_running_server(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    (tmp_path / "server.json").write_text(f'{{"pid": {proc.pid}, "url": "http://127.0.0.1:9/api"}}')
    assert server_status(tmp_path) is None and not (tmp_path / "server.json").exists()


# ---- PostgreSQL ---------------------------------------------------------------------------------------------
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _pg_user() -> str | None:
    if os.geteuid() != 0:
        return None  # run as ourselves
    return "nobody"


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL 15 cluster on a free port (run as `nobody` when we are root: postgres refuses root)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    pg_bin = bins[-1].parent if bins else PG_BIN
    initdb = shutil.which("initdb") or str(pg_bin / "initdb")
    pg_ctl = shutil.which("pg_ctl") or str(pg_bin / "pg_ctl")
    if not Path(initdb).exists() or not Path(pg_ctl).exists():
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed (apt-get install postgresql)")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("asyncpg not installed (Prefect's PostgreSQL driver)")
    user = _pg_user()
    if user and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="flows-pg-", dir="/tmp"))
    os.chmod(base, 0o777)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    os.chmod(sock, 0o777)
    as_user = ["runuser", "-u", user, "--"] if user else []
    port = free_port()
    r = subprocess.run(as_user + [initdb, "-D", str(data), "-U", "prefect", "--auth=trust", "-E", "UTF8"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    r = subprocess.run(as_user + [pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "pg.log"), "-w", "-t", "60",
                                  "start"], capture_output=True, text=True)
    try:
        if r.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {(base / 'pg.log').read_text()[-300:] if (base / 'pg.log').exists() else r.stderr}")
        psql = str(pg_bin / "psql") if (pg_bin / "psql").exists() else "psql"
        subprocess.run(as_user + [psql, "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", "-d", "postgres", "-c",
                                  "CREATE DATABASE prefect"], check=True, capture_output=True)
        yield {"url": f"postgresql+asyncpg://prefect@127.0.0.1:{port}/prefect", "port": port, "psql": psql,
               "as_user": as_user}
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@needs_prefect_cli
def test_server_on_postgresql(tmp_path, postgres):
    import asyncio

    with server(tmp_path / "state", {"PREFECT_API_DATABASE_CONNECTION_URL": postgres["url"]}) as state:
        assert state["database"].startswith("postgresql+asyncpg://prefect@127.0.0.1")
        assert not (tmp_path / "state" / "prefect.db").exists()  # no SQLite file: the data is in PostgreSQL

        async def make_flow() -> str:
            from prefect.client.orchestration import get_client

            async with get_client() as client:
                return str(await client.create_flow_from_name("flows-pg-check"))

        with api(state["url"]):
            flow_id = asyncio.run(make_flow())
        rows = subprocess.run(postgres["as_user"] + [postgres["psql"], "-h", "127.0.0.1", "-p", str(postgres["port"]),
                                                     "-U", "prefect", "-d", "prefect", "-At", "-c",
                                                     "SELECT id, name FROM flow WHERE name = 'flows-pg-check'"],
                              check=True, capture_output=True, text=True).stdout.strip()
        assert rows == f"{flow_id}|flows-pg-check"


# ---- flows run reuses a running flows server (issue 31) ------------------------------------------------------
@needs_prefect_cli
def test_flows_run_uses_the_running_flows_server(tmp_path):
    import json

    inp = tmp_path / "in"
    inp.mkdir()
    with open(inp / "part-000.jsonl", "w", encoding="utf-8") as fh:
        for i in range(12):
            fh.write(json.dumps({"id": f"d{i}", "text": f"Document {i}. " + "Plain words in a line. " * 10}) + "\n")
    state_dir = tmp_path / "state"
    with server(state_dir) as state:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env["FLOWS_SERVER_DIR"] = str(state_dir)
        r = subprocess.run([sys.executable, "-m", "flows.cli", "run", "dedup", "--input", str(inp), "--output",
                            str(tmp_path / "out"), "-v"], capture_output=True, text=True, timeout=300, env=env,
                           cwd=str(ROOT))
        assert r.returncode == 0, r.stderr[-3000:]
        assert f"using the running flows server at {state['url']}" in r.stderr
        assert "Starting temporary server" not in r.stderr
        from prefect.client.orchestration import get_client

        with api(state["url"]), get_client(sync_client=True) as client:
            runs = client.read_flow_runs()
        assert [fr.state.type.value for fr in runs] == ["COMPLETED"]  # the run is on the server, completed
