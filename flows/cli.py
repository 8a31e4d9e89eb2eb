"""The `flows` command: list, show and run pipelines."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional


def _prefect_env() -> None:
    """Make the ephemeral Prefect API work on a fresh machine: an existing PREFECT_HOME, a start-up timeout
    long enough for a cold start, no telemetry. Must run before prefect is imported."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str(Path.home() / ".prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


_prefect_env()

import typer  # noqa: E402

from flows.config import ConfigError, defaults_yaml, effective_yaml, load_config  # noqa: E402
from flows.registry import PIPELINES, UnknownPipeline, get_pipeline  # noqa: E402

app = typer.Typer(help="Prefect flows for LLM training data. `flows run dolma` curates the bundled sample.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


_VERBOSE = False  # `flows run -v`: a user error's traceback before its one line


def _fail(msg: str) -> None:
    if _VERBOSE and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@app.command("list")
def list_pipelines() -> None:
    """List the pipelines with a one-line description."""
    for name in sorted(PIPELINES):
        try:
            desc = get_pipeline(name).description
        except Exception as e:  # a pipeline whose optional dependencies are missing still gets listed
            desc = f"(unavailable: {e})"
        typer.echo(f"{name:24s} {desc}")


@app.command("show")
def show(pipeline: str = typer.Argument(..., help="pipeline name (see `flows list`)"),
         config: Optional[Path] = typer.Option(None, "--config", help="YAML config to merge over the defaults"),
         set_: List[str] = typer.Option([], "--set", help="override a key: dotted.key=value")) -> None:
    """Print the effective config of a pipeline as YAML (defaults, or with --config/--set applied)."""
    try:
        p = get_pipeline(pipeline)
        if config is None and not set_:
            typer.echo(defaults_yaml(p.config_model), nl=False)
        else:
            typer.echo(effective_yaml(load_config(p.config_model, config_file=str(config) if config else None,
                                                  sets=set_)), nl=False)
    except (UnknownPipeline, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))  # args[0]: a KeyError's str() adds quotes


def _extra_sets(args: list[str]) -> list[str]:
    """`--corpus DIR --ids FILE` after the pipeline name is shorthand for `--set corpus=DIR --set ids=FILE`
    (`--key=value` works too; dashes in a key become underscores). Anything else is an error."""
    sets, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(f"unexpected argument '{arg}' (options are --key value or --set key=value)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"option '{arg}' needs a value")
            value, i = args[i + 1], i + 1
        sets.append(f"{key.replace('-', '_')}={value}")
        i += 1
    return sets


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(ctx: typer.Context,
        pipeline: str = typer.Argument(..., help="pipeline name (see `flows list`)"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML config file"),
        input_: List[str] = typer.Option([], "--input", help="input file or folder (repeatable); default: sample"),
        output: Optional[str] = typer.Option(None, "--output", help="output folder; default ./output/<pipeline>"),
        set_: List[str] = typer.Option([], "--set", help="override a config key: dotted.key=value (repeatable)"),
        deployment: bool = typer.Option(False, "--deployment", help="trigger the registered deployment (flows "
                                        "deploy) on the server instead of running here, and follow its state"),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="show Prefect's and datatrove's log lines "
                                     "(default: progress, summary tables, warnings) and a user error's traceback"),
        ) -> None:
    """Run a pipeline as a Prefect flow (in-process, ephemeral API: no server needed)."""
    global _VERBOSE
    _VERBOSE = verbose
    early = None
    if not deployment:
        reused = _reuse_flows_server()  # before prefect is imported: its settings read PREFECT_API_URL once
        if reused and verbose:
            typer.echo(f"note: using the running flows server at {reused} (FLOWS_REUSE_SERVER=0: a temporary "
                       f"API instead)", err=True)
        early = None if reused else _EarlyAPI.spawn()
    try:
        _run(ctx, pipeline, config, input_, output, set_, deployment, verbose, early)
    finally:
        if early is not None:
            early.close()  # not attached (an error before the flow): ended here; attached: Prefect's atexit stop


def _run(ctx, pipeline, config, input_, output, set_, deployment, verbose, early) -> None:
    from flows.reporting import configure_console

    configure_console(verbose)
    if deployment:
        from flows.server_cli import run_deployment_cli

        try:
            sets = list(set_) + _extra_sets(list(ctx.args))
        except ConfigError as e:
            _fail(str(e))
        return run_deployment_cli(pipeline, config, input_, output, sets)
    try:
        p = get_pipeline(pipeline)
        cfg = load_config(p.config_model, config_file=str(config) if config else None, inputs=input_,
                          output=output or f"output/{pipeline}", sets=list(set_) + _extra_sets(list(ctx.args)))
    except (UnknownPipeline, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))  # args[0]: a KeyError's str() adds quotes
        return
    from corpora.plan import check_output
    from flows.reporting import USER_ERRORS  # InputError, ConfigError, PlanError, ... FileNotFoundError, ...

    try:
        check_output(cfg.output, list(getattr(cfg, "inputs", []) or []))
        if p.preflight is not None:
            p.preflight(cfg)
    except USER_ERRORS as e:
        _fail(_one_line(e))
        return
    try:
        if early is not None:
            early.attach()  # Prefect's own temporary server object takes the process started above
        result = _flow_for(p, cfg)(cfg)
    except USER_ERRORS as e:  # raised inside the flow: Prefect's console shows no traceback for it (quiet)
        _fail(_one_line(e))
        return
    out = (result or {}).get("output")
    if out:
        typer.echo(f"output: {out}")


def _flow_for(p, cfg):
    """The pipeline's flow, on prefect-ray's RayTaskRunner when its generation shards are tasks on Ray. Only
    against a real server (PREFECT_API_URL): on the ephemeral API every Ray worker would start its own server."""
    from flows.deployments import task_runner_for

    runner = task_runner_for(cfg)
    if runner is None:
        return p.flow
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo("note: generation shards on Ray need a Prefect server (flows server start; export "
                   "PREFECT_API_URL=...): running them as local tasks", err=True)
        return p.flow
    return p.flow.with_options(task_runner=runner)


def _reuse_flows_server() -> str | None:
    """A running local `flows server` (the default state dir: $FLOWS_SERVER_DIR or ~/.flows/server) that answers
    /health becomes this run's API (PREFECT_API_URL), instead of a temporary one started and stopped by this
    process (~6-8 s on 2 cores). None when PREFECT_API_URL is set already, FLOWS_REUSE_SERVER=0, none answers, or
    prefect is imported already (an in-process caller keeps the settings it has)."""
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    if os.environ.get("FLOWS_REUSE_SERVER", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from flows.server_cli import default_state_dir, read_state

    if not read_state(default_state_dir()):  # no state file: nothing to ask (no httpx import, no request)
        return None
    from flows.server_cli import server_status

    state = server_status(default_state_dir())
    if not state or not state.get("healthy"):
        return None
    os.environ["PREFECT_API_URL"] = state["url"]
    return state["url"]


class _EarlyAPI:
    """Prefect's temporary API server, started before config, preflight and the import of
    prefect.server.api.server (~2.5 s) instead of after them, so its ~5 s boot runs beside them.

    It is Prefect's own: the process is the command of prefect.server.api.server.SubprocessASGIServer
    ._run_uvicorn_command (prefect 3.6: uvicorn on create_app, PREFECT__SERVER_EPHEMERAL=1, the current settings
    as environment; tests/test_cli.py checks the two stay equal), and `attach` hands it to that class's
    singleton, which get_client (prefect/client/orchestration/__init__.py: no PREFECT_API_URL and
    PREFECT_SERVER_ALLOW_EPHEMERAL_MODE) then finds running: the flow run, its states, retries, logs and
    artifacts go through the same client to the same server, which Prefect's atexit stop ends as before.
    Not used (None from spawn) when an API URL is set, ephemeral mode is off, or this process imported
    Prefect's server module already (an in-process caller's temporary server may be running)."""

    def __init__(self, proc, port: int):
        self.proc, self.port, self.attached = proc, port, False

    @staticmethod
    def command(port: int) -> tuple[list[str], dict[str, str]]:
        import prefect
        from prefect.settings import get_current_settings

        args = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
                "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "error", "--lifespan", "on"]
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1",
               **get_current_settings().to_environment_variables(exclude_unset=True)}
        return args, env

    @classmethod
    def spawn(cls) -> "_EarlyAPI | None":
        if os.environ.get("FLOWS_EARLY_API", "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        if "prefect.server.api.server" in sys.modules:
            return None
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

        if PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value():
            return None
        import random
        import socket
        import subprocess

        for _ in range(10):  # as SubprocessASGIServer.find_available_port: 8000-8999, a bind check
            port = random.choice(range(8000, 9000))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                    break
                except OSError:
                    continue
        else:
            return None  # Prefect's own start finds a port (or says it cannot)
        args, env = cls.command(port)
        return cls(subprocess.Popen(args, env=env), port)

    def attach(self) -> None:
        """Hand the process to SubprocessASGIServer() once it answers /health. When it exited (a port taken
        meanwhile: uvicorn's exit 3) the singleton is left alone and get_client starts one itself, as before."""
        import time

        import httpx
        from prefect.server.api.server import SubprocessASGIServer
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        server = SubprocessASGIServer()
        if server.running:  # one was started in this process meanwhile (e.g. by a preflight's client)
            return
        url = f"http://127.0.0.1:{self.port}/api/health"
        deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                return  # close() ends it; Prefect's start tries once more and reports its own error
        import atexit

        server.port, server.server_process, server.running = self.port, self.proc, True
        atexit.register(server.stop)
        self.attached = True

    def close(self) -> None:
        if self.attached or self.proc.poll() is not None:
            return
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Sub-commands that live in their own modules (server/deploy, report/inspect): each has `register(app)`.
_COMMAND_MODULES = ("flows.server_cli", "flows.report_cli")


def _register_commands() -> None:
    import importlib

    for module in _COMMAND_MODULES:
        try:
            importlib.import_module(module).register(app)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


_register_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
