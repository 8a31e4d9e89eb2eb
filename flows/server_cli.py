"""`flows server start|stop|status` (a real Prefect server, 127.0.0.1 by default) and `flows deploy` (the
deployments of `prefect.yaml`, see flows/deployments.py). `register(app)` adds them to the `flows` command.

The server runs `prefect server start` in its own process session with PREFECT_HOME = the state dir (SQLite
`prefect.db` there, unless PREFECT_API_DATABASE_CONNECTION_URL names PostgreSQL), logs to `server.log`, and
records pid, host, port and URL in `server.json`; `stop` ends its whole process group (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

STATE_FILE = "server.json"


def default_state_dir() -> Path:
    return Path(os.environ.get("FLOWS_SERVER_DIR") or Path.home() / ".flows" / "server")


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child not reaped yet) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def scheduler_problem() -> str | None:
    """Prefect 3.6's scheduler service fails on every loop under SQLAlchemy 2.1 ("Can't evaluate bulk DML
    statement"): schedules never create runs. None when the installed SQLAlchemy is fine."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("sqlalchemy").split(".")[:2])
    except Exception:  # noqa: BLE001 - unknown version: say nothing
        return None
    if (major, minor) >= (2, 1):
        return (f"SQLAlchemy {major}.{minor} is installed: Prefect 3.6's scheduler fails with it, so scheduled "
                f"deployments never fire (pip install 'sqlalchemy>=2.0,<2.1')")
    return None


def start_server(state_dir: Path, host: str = "127.0.0.1", port: int = 4200, ui: bool = True,
                 timeout_s: float = 90.0, extra_env: dict[str, str] | None = None) -> dict:
    """Start a Prefect server in the background and wait until /api/health answers. Raises RuntimeError with
    one line (port taken, server died: with the last log line) on failure; returns the state record."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    old = read_state(state_dir)
    if old and _alive(old["pid"]):
        raise RuntimeError(f"a server of {state_dir} is already running at {old['url']} (pid {old['pid']}); "
                           f"`flows server stop` first")
    if not port_free(host, port):
        raise RuntimeError(f"port {port} on {host} is already in use (another server? pick one with --port)")
    env = {**os.environ, "PREFECT_HOME": str(state_dir), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", **(extra_env or {})}
    env.pop("PREFECT_API_URL", None)
    log_path = state_dir / "server.log"
    prefect_bin = Path(sys.executable).with_name("prefect")
    cmd = [str(prefect_bin) if prefect_bin.exists() else "prefect", "server", "start", "--host", host,
           "--port", str(port), "--no-ui" if not ui else "--ui"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, cwd=str(state_dir))
    url = f"http://{host}:{port}/api"
    db = env.get("PREFECT_API_DATABASE_CONNECTION_URL") or f"sqlite:///{state_dir / 'prefect.db'}"
    state = {"pid": proc.pid, "host": host, "port": port, "url": url, "state_dir": str(state_dir),
             "log": str(log_path), "database": _redact(db), "started": time.time()}
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            raise RuntimeError(f"the server exited with code {proc.returncode}: {_last_line(log_path)} "
                               f"(log: {log_path})")
        if healthy(url, timeout=1.0):
            return state
        time.sleep(0.5)
    stop_server(state_dir)
    raise RuntimeError(f"the server did not answer {url}/health within {timeout_s:.0f} s (log: {log_path})")


def _redact(url: str) -> str:
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def stop_server(state_dir: Path, timeout_s: float = 20.0) -> bool:
    """End the server's process group; False when none was running. Removes the state file."""
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if not state:
        return False
    pid = int(state["pid"])
    was_alive = _alive(pid)
    if was_alive:
        _kill_group(pid, signal.SIGTERM)
        t0 = time.monotonic()
        # the whole group, not only its leader: the server's own children may outlive it by a moment
        while _group_alive(pid) and time.monotonic() - t0 < timeout_s:
            _reap(pid)
            time.sleep(0.2)
        if _group_alive(pid):
            _kill_group(pid, signal.SIGKILL)
            t1 = time.monotonic()
            while _group_alive(pid) and time.monotonic() - t1 < 5:
                _reap(pid)
                time.sleep(0.1)
    _reap(pid)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return was_alive


def _reap(pid: int) -> None:
    """Our own child (the server started by this process): collect its exit so it is not a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in the group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after "(comm)": state, ppid, pgrp, ...
            return True
    return False


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def server_status(state_dir: Path) -> dict | None:
    """The running server's state record (with `healthy`), or None (a stale state file is removed)."""
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if not state:
        return None
    if not _alive(int(state["pid"])):
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return None
    return {**state, "healthy": healthy(state["url"])}


def api_url(state_dir: Path | None = None) -> str:
    """The server to talk to: PREFECT_API_URL when set, else the running `flows server` of the state dir."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    state = server_status(state_dir or default_state_dir())
    if state:
        return state["url"]
    raise RuntimeError("no Prefect server: start one with `flows server start` (or set PREFECT_API_URL)")


def _with_api(url: str):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


# ---- commands -----------------------------------------------------------------------------------------------
server_app = typer.Typer(help="A local Prefect server (start|stop|status) for deployments and workers.",
                         no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

_STATE_OPT = typer.Option(None, "--state-dir", help="server state (PREFECT_HOME, SQLite db, log, pid); default "
                                                    "$FLOWS_SERVER_DIR or ~/.flows/server")


@server_app.command("start")
def start_cmd(host: str = typer.Option("127.0.0.1", "--host", help="address to bind (127.0.0.1: this machine)"),
              port: int = typer.Option(4200, "--port"),
              state_dir: Optional[Path] = _STATE_OPT,
              ui: bool = typer.Option(True, "--ui/--no-ui", help="serve the Prefect UI")) -> None:
    """Start a Prefect server in the background (SQLite in the state dir, or PostgreSQL via
    PREFECT_API_DATABASE_CONNECTION_URL)."""
    try:
        state = start_server(state_dir or default_state_dir(), host, port, ui)
    except (RuntimeError, OSError) as e:
        _fail(str(e))
        return
    typer.echo(f"Prefect server running at {state['url']} (pid {state['pid']}, database {state['database']}, "
               f"log {state['log']})")
    typer.echo(f"export PREFECT_API_URL={state['url']}")
    if scheduler_problem():
        typer.echo(f"warning: {scheduler_problem()}", err=True)


@server_app.command("stop")
def stop_cmd(state_dir: Optional[Path] = _STATE_OPT) -> None:
    """Stop the server (its whole process group)."""
    if stop_server(state_dir or default_state_dir()):
        typer.echo("Prefect server stopped")
    else:
        typer.echo("no server was running")


@server_app.command("status")
def status_cmd(state_dir: Optional[Path] = _STATE_OPT) -> None:
    """Say whether the server runs (exit 0) or not (exit 1)."""
    state = server_status(state_dir or default_state_dir())
    if not state:
        typer.echo("not running")
        raise typer.Exit(1)
    typer.echo(f"running at {state['url']} (pid {state['pid']}, {'healthy' if state['healthy'] else 'NOT answering'}"
               f", database {state['database']}, state {state['state_dir']})")
    if not state["healthy"]:
        raise typer.Exit(1)


def deploy_cmd(names: Optional[List[str]] = typer.Argument(None, help="deployment names (default pipelines)"),
               all_: bool = typer.Option(False, "--all", help="every deployment of the file"),
               file: Path = typer.Option(None, "--file", help="prefect.yaml to read (default: the project's)"),
               config: Optional[Path] = typer.Option(None, "--config", help="YAML merged over one deployment's "
                                                                             "config"),
               set_: List[str] = typer.Option([], "--set", help="override a config key of one deployment"),
               gpus: Optional[int] = typer.Option(None, "--gpus", help="GPU count for a gpu-pool deployment"),
               workdir: Optional[Path] = typer.Option(None, "--workdir", help="the worker's working directory "
                                                                               "(default: the folder of the file)"),
               dry_run: bool = typer.Option(False, "--dry-run", help="validate and print, register nothing"),
               state_dir: Optional[Path] = _STATE_OPT) -> None:
    """Register deployments from prefect.yaml: one per pipeline, the config validated by its model first."""
    from flows.config import ConfigError
    from flows.deployments import PREFECT_FILE, DeployError, deploy, deployment_specs

    if not names and not all_:
        _fail("name the deployments to register, or --all")
    try:
        specs = deployment_specs(file or PREFECT_FILE, None if all_ else list(names or []), sets=list(set_),
                                 config_file=str(config) if config else None, gpus=gpus, workdir=workdir)
    except (DeployError, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))
        return
    for s in specs:
        sched = ", ".join(str(x.get("cron", f"every {x.get('interval')} s")) + ("" if x.get("active", True)
                                                                                 else " (paused)")
                          for x in s.schedules) or "no schedule"
        typer.echo(f"{s.full_name}: pipeline {s.pipeline}, pool {s.work_pool}, {sched}"
                   + (f", job variables {json.dumps(s.job_variables)}" if s.job_variables else ""))
    if dry_run:
        return
    import httpx

    url = None
    try:
        url = api_url(state_dir)
        with _with_api(url):
            done = deploy(specs)
    except httpx.HTTPError as e:
        _fail(f"the Prefect server at {url} did not take the deployments: {_one_line(e)}")
        return
    except (RuntimeError, OSError) as e:
        _fail(str(e))
        return
    for s, dep_id in done:
        typer.echo(f"registered {s.full_name} ({dep_id}) on {url}")
    pools = sorted({s.work_pool for s in specs})
    typer.echo("start a worker: " + "; ".join(f"PREFECT_API_URL={url} prefect worker start --pool {p}"
                                               for p in pools))


def run_deployment_cli(pipeline: str, config: Optional[Path], inputs: list[str], output: Optional[str],
                       sets: list[str]) -> None:
    """`flows run <pipeline> --deployment`: trigger the registered deployment and follow its state."""
    from flows.config import ConfigError
    from flows.deployments import DeployError, trigger

    def on_state(name: str, message: Optional[str]) -> None:
        typer.echo(f"flow run: {name}" + (f" ({message})" if message and name not in ("Completed",) else ""))

    import httpx

    url = None
    try:
        url = api_url()
        with _with_api(url):
            result = trigger(pipeline, config_file=str(config) if config else None, inputs=inputs,
                             output=output, sets=sets, on_state=on_state)
    except httpx.HTTPError as e:
        _fail(f"the Prefect server at {url} did not answer: {_one_line(e)}")
        return
    except (DeployError, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))
        return
    except (RuntimeError, OSError) as e:
        _fail(str(e))
        return
    typer.echo(f"flow run {result.name} ({result.flow_run_id}): {result.state}")
    if result.state != "COMPLETED":
        _fail(f"deployment run ended {result.state}: {result.message or ''}".rstrip(": "), code=1)
    typer.echo(f"output: {result.config.get('output')}")


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
    app.command("deploy")(deploy_cmd)
