"""The local runtime: the unchanged Chalice app on one machine, with no Docker.

It starts (or connects to) the AWS endpoint, applies the CloudFormation template, restores
the last snapshot, and serves the app as API Gateway and Lambda would: REST on
`http://HOST:8000/api`, the built frontend on `/`, the WebSocket API and its management
API on `ws://HOST:8001`, SQS event sources and schedules. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice import Chalice
from chalice.app import ScheduledEventConfig, SQSEventConfig

from infra.local import lambdas
from infra.local.endpoint import EmbeddedEndpoint, aws_client, import_legacy_snapshot, stage_credentials
from infra.local.logs import LogCollector, LogRenderer, RuntimeLogHandler
from infra.local.rest import RestGateway, TokenBucket
from infra.local.scheduler import Schedule, ScheduleError, Scheduler
from infra.local.sqs import EventSource, SqsPoller
from infra.local.websocket import GatewayConfig, WebSocketGateway
from infra.package import API_BURST_LIMIT, API_RATE_LIMIT

log = logging.getLogger("ems.local.runtime")

PROJECT_DIR = Path(__file__).resolve().parents[2]


class StartupError(Exception):
    """The runtime cannot start; the message says why and what to do."""


@dataclass
class RuntimeConfig:
    """Everything `python -m infra.local` can be told."""

    app_dir: Path = PROJECT_DIR
    stage: str = "local"
    region: str = "us-east-1"
    host: str = "127.0.0.1"
    public_host: str = "localhost"
    rest_port: int = 8000
    ws_port: int = 8001
    endpoint_port: int = 4566
    endpoint_url: str | None = None  # None: the embedded endpoint on endpoint_port
    data_dir: Path = PROJECT_DIR / ".data" / "local"
    frontend_dir: Path | None = PROJECT_DIR / "frontend" / "dist"
    rest_concurrency: int = 4
    rest_rate_limit: float = API_RATE_LIMIT  # the packaged stage's throttling; 0: off
    rest_burst_limit: int = API_BURST_LIMIT
    websocket_concurrency: int = 2
    sqs_concurrency: int = 2
    schedule_time_scale: float = 1.0
    save_interval_s: float = 30.0  # the embedded endpoint saves its state this often after a change
    persist: bool = True  # False: the embedded endpoint starts empty and saves nothing
    queue_visibility_timeout_s: int = 10
    queue_max_receive_count: int = 3
    ws_idle_timeout_s: float = 600.0
    ws_max_duration_s: float = 7200.0
    log_json: bool = False
    seed: str | None = None  # "module:function" run once the app is up (demo data)
    simulator_args: list[str] | None = None  # run `python -m simulator ARGS` beside the app
    extra_env: dict[str, str] = field(default_factory=dict)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def chalice_stage_env(app_dir: Path, stage: str) -> dict[str, str]:
    """The environment variables `.chalice/config.json` gives the stage (global, then stage)."""
    path = app_dir / ".chalice" / "config.json"
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return {str(k): str(v) for k, v in env.items()}


class LocalRuntime:
    """Starts and stops every component; `run()` blocks until a signal arrives."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.endpoint: EmbeddedEndpoint | None = None
        self.endpoint_url = config.endpoint_url or f"http://{config.host}:{config.endpoint_port}"
        self.pools: dict[str, lambdas.FunctionPool] = {}
        self.pollers: list[SqsPoller] = []
        self.scheduler: Scheduler | None = None
        self.rest: RestGateway | None = None
        self.gateway: WebSocketGateway | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._collector: LogCollector | None = None
        self._renderer: LogRenderer | None = None
        self._simulator: subprocess.Popen[str] | None = None
        self._stack: Any = None

    # --- start ---------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        ports = [("REST", cfg.rest_port), ("WebSocket", cfg.ws_port)]
        if cfg.endpoint_url is None:
            ports.append(("AWS endpoint", cfg.endpoint_port))
        busy = [f"{name} port {port}" for name, port in ports if port_in_use(cfg.host, port)]
        if busy:
            raise StartupError(
                f"{', '.join(busy)} on {cfg.host} already in use: is another `make run` "
                "running? Stop it, or choose other ports (see `python -m infra.local --help`)."
            )
        cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._set_environment()
        if cfg.endpoint_url is None:
            credentials = stage_credentials(cfg.data_dir)
            os.environ.update(credentials.env())
            self.endpoint = EmbeddedEndpoint(
                cfg.host, cfg.endpoint_port, cfg.data_dir / "endpoint.log", credentials,
                state_dir=cfg.data_dir / "endpoint" if cfg.persist else None,
                save_interval_s=cfg.save_interval_s,
            )
            self.endpoint.start()
        else:
            self._check_endpoint()
        self._apply_template()
        if self.endpoint is not None and cfg.persist:
            self._import_legacy_snapshot()
        app = self._load_app()
        self._upgrade_data()
        self._start_functions(app)
        if cfg.seed:
            self._seed(cfg.seed)
        self._print_components(app)
        if cfg.simulator_args is not None:
            self._start_simulator(cfg.simulator_args)

    def _set_environment(self) -> None:
        cfg = self.config
        env = chalice_stage_env(cfg.app_dir, cfg.stage)
        env.update(
            {
                "EMS_STAGE": cfg.stage,
                "AWS_REGION": cfg.region,
                "AWS_DEFAULT_REGION": cfg.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "EMS_DATA_DIR": str(cfg.data_dir),
                "EMS_WEBSOCKET_API_ID": "local",
                "EMS_WEBSOCKET_STAGE": "api",
                "EMS_WEBSOCKET_MANAGEMENT_URL": f"http://{cfg.host}:{cfg.ws_port}/api",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(cfg.extra_env)
        os.environ.update(env)
        # An endpoint named by AWS_ENDPOINT_URL (LocalStack) takes any keys unless it checks them;
        # the embedded one gets the data folder's own keys (see start).
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

    def _check_endpoint(self) -> None:
        try:
            aws_client("sqs", self.endpoint_url, self.config.region).list_queues(MaxResults=1)
        except Exception as exc:
            raise StartupError(f"the AWS endpoint {self.endpoint_url} does not answer: {exc}") from exc

    def _apply_template(self) -> None:
        from infra import bootstrap

        cfg = self.config
        try:
            self._stack = bootstrap.apply_stack(
                stage=cfg.stage,
                endpoint_url=self.endpoint_url,
                region=cfg.region,
                parameters={
                    "VisibilityTimeoutSeconds": str(cfg.queue_visibility_timeout_s),
                    "MaxReceiveCount": str(cfg.queue_max_receive_count),
                },
                log=lambda line: log.info("%s", line),
            )
        except bootstrap.BootstrapError as exc:
            raise StartupError(f"applying infra/template.yaml failed: {exc}") from exc

    def _import_legacy_snapshot(self) -> None:
        stack = self._stack
        imported = import_legacy_snapshot(
            self.config.data_dir, self.endpoint_url, self.config.region, tables=sorted(stack.tables.values()),
            queues=sorted(url.rsplit("/", 1)[-1] for url in stack.queues.values()),
            log=lambda line: log.warning("%s", line),
        )
        if imported is not None:
            log.info("imported %d items and %d queued messages saved by an earlier version",
                     imported["items"], imported["messages"])

    def _load_app(self) -> Chalice:
        app_dir = str(self.config.app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        module = importlib.import_module("app")
        app = getattr(module, "app", None)
        if not isinstance(app, Chalice):
            raise StartupError(f"{app_dir}/app.py defines no Chalice `app`")
        return app

    @staticmethod
    def _upgrade_data() -> None:
        """Run the app's `upgrade()` (what brings data kept by an earlier version up to this one;
        idempotent) before any function starts."""
        upgrade = getattr(importlib.import_module("app"), "upgrade", None)
        if callable(upgrade):
            try:
                upgrade()
            except Exception as exc:
                raise StartupError(f"upgrading the stored data failed: {exc}") from exc

    def _start_functions(self, app: Chalice) -> None:
        cfg = self.config
        renderer = LogRenderer(sys.stdout, json_output=cfg.log_json, colour=sys.stdout.isatty())
        self._renderer = renderer
        self._collector = LogCollector(cfg.data_dir / "logs.sock", renderer)
        self._collector.start()
        context = lambdas.fork_server_context(str(cfg.app_dir))
        config_env = chalice_stage_env(cfg.app_dir, cfg.stage)
        memory_mb = int(config_env.get("EMS_LAMBDA_MEMORY_MB", "512"))

        def pool(name: str, concurrency: int) -> lambdas.FunctionPool:
            setup = lambdas.WorkerSetup(
                app_dir=str(cfg.app_dir),
                log_socket=str(self._collector.path) if self._collector else None,
                function_name=f"{app.app_name}-{cfg.stage}-{name}",
                memory_mb=memory_mb,
                timeout_s=30,
            )
            self.pools[name] = lambdas.FunctionPool(setup, concurrency, context)
            return self.pools[name]

        if app.routes:
            self.rest = RestGateway(
                app, pool("api_handler", cfg.rest_concurrency), cfg.host, cfg.rest_port, "api",
                cfg.frontend_dir, extra_files={"runtime-config.json": self._frontend_config()},
                throttle=TokenBucket(cfg.rest_rate_limit, cfg.rest_burst_limit),
            )
            self.rest.start()
        else:
            self.rest = None
        ws_handlers = {route: config.name for route, config in app.websocket_handlers.items()}
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="websocket", daemon=True)
        self._loop_thread.start()
        if ws_handlers:
            ws_pool = pool("websocket", cfg.websocket_concurrency)
            self.gateway = WebSocketGateway(
                GatewayConfig(
                    host=cfg.host,
                    port=cfg.ws_port,
                    idle_timeout_s=cfg.ws_idle_timeout_s,
                    max_duration_s=cfg.ws_max_duration_s,
                    handlers=ws_handlers,
                ),
                ws_pool.invoke_async,
            )
            asyncio.run_coroutine_threadsafe(self.gateway.start(), self._loop).result(10)
        schedules: list[Schedule] = []
        for source in app.event_sources:
            if isinstance(source, SQSEventConfig) and source.queue:
                concurrency = source.maximum_concurrency or cfg.sqs_concurrency
                poller = SqsPoller(
                    EventSource(
                        handler=source.name,
                        queue=source.queue,
                        batch_size=source.batch_size,
                        batching_window_s=source.maximum_batching_window_in_seconds,
                        concurrency=concurrency,
                    ),
                    pool(source.name, concurrency),
                    self.endpoint_url,
                    cfg.region,
                    self.stop_event,
                )
                self.pollers.append(poller)
            elif isinstance(source, ScheduledEventConfig):
                expression = source.schedule_expression
                text = expression if isinstance(expression, str) else expression.to_string()
                schedules.append(Schedule(source.name, text))
            else:
                log.warning("event source %s (%s) is not run locally", source.name, type(source).__name__)
        if schedules:
            try:
                self.scheduler = Scheduler(
                    schedules, pool("schedules", 1), cfg.region, self.stop_event, cfg.schedule_time_scale
                )
            except ScheduleError as exc:
                raise StartupError(str(exc)) from exc
            self.scheduler.start()
        for poller in self.pollers:
            poller.start()

    def _seed(self, target: str) -> None:
        """Run the seeding function (`module:function`) in a worker, as the app's own code."""
        pool = self.pools.get("api_handler") or next(iter(self.pools.values()), None)
        if pool is None:
            raise StartupError("nothing to seed with: the app has no functions")
        try:
            seeded = pool.invoke(target, {})
        except lambdas.InvocationError as exc:
            raise StartupError(f"seeding with {target} failed: {exc}") from exc
        if seeded:
            log.info("seeded: %s", ", ".join(map(str, seeded)))

    def _start_simulator(self, args: list[str]) -> None:
        """The meter simulator as a child process; its lines are shown like the functions' logs."""
        command = [sys.executable, "-m", "simulator", *args, "--stage", self.config.stage,
                   "--endpoint-url", self.endpoint_url]
        self._simulator = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True, bufsize=1,
                                           preexec_fn=lambdas.die_with_parent)  # noqa: PLW1509
        renderer = self._renderer
        assert renderer is not None, "functions start before the simulator"

        def relay(stream: Any) -> None:
            for line in stream:
                renderer.emit("simulator", line)

        threading.Thread(target=relay, args=(self._simulator.stdout,), daemon=True).start()
        print(f"Simulator      python -m simulator {' '.join(args)}  (off: --no-simulator)", flush=True)

    def _frontend_config(self) -> bytes:
        cfg = self.config
        return json.dumps(
            {
                "apiBaseUrl": f"http://{cfg.public_host}:{cfg.rest_port}/api",
                "websocketUrl": f"ws://{cfg.public_host}:{cfg.ws_port}",
                "stage": cfg.stage,
            }
        ).encode()

    def _print_components(self, app: Chalice) -> None:
        cfg = self.config
        host = cfg.public_host
        lines = [
            f"AWS endpoint   {self.endpoint_url}"
            + (f"  (embedded ministack; keys in {cfg.data_dir / 'aws-credentials'})" if self.endpoint else ""),
        ]
        if self.rest:
            lines.append(f"REST API       http://{host}:{cfg.rest_port}/api  ({len(app.routes)} routes)")
            built = cfg.frontend_dir is not None and (cfg.frontend_dir / "index.html").exists()
            lines.append(f"Frontend       http://{host}:{cfg.rest_port}/" + ("" if built else "  (not built)"))
        if self.gateway:
            lines.append(f"WebSocket API  ws://{host}:{cfg.ws_port}  (management: http://{cfg.host}:{cfg.ws_port}/api/@connections)")
        for poller in self.pollers:
            s = poller.source
            lines.append(f"SQS consumer   {s.handler} <- {s.queue}  (batch {s.batch_size}, concurrency {s.concurrency})")
        if self.scheduler:
            for schedule, _ in self.scheduler._parsed:
                lines.append(f"Schedule       {schedule.handler}  {schedule.expression}")
        if self._stack is not None:
            lines.append("Tables         " + ", ".join(sorted(self._stack.tables.values())))
            lines.append("Queues         " + ", ".join(sorted(u.rsplit("/", 1)[-1] for u in self._stack.queues.values())))
        if self.endpoint and self.endpoint.state_dir:
            lines.append(
                f"State          {self.endpoint.state_dir}  (saved {cfg.save_interval_s:.0f} s after a change "
                "and on Ctrl-C)"
            )
        print("\n".join(lines) + "\nReady. Ctrl-C stops everything.", flush=True)

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking work, finish what is running, snapshot, and end every process."""
        self.stop_event.set()
        if self._simulator is not None and self._simulator.poll() is None:
            self._simulator.send_signal(signal.SIGINT)  # it finishes its batch and prints a summary
            try:
                self._simulator.wait(10)
            except subprocess.TimeoutExpired:
                self._simulator.kill()
        if self.scheduler:
            self.scheduler.join(10)
        for poller in self.pollers:
            poller.join(15)
        if self.rest:
            self.rest.stop()
        if self.gateway and self._loop:
            try:
                asyncio.run_coroutine_threadsafe(self.gateway.stop(), self._loop).result(10)
            except Exception as exc:  # noqa: BLE001
                log.warning("closing WebSocket connections: %s", exc)
        if self._loop and self._loop_thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(5)
            if not self._loop.is_running():
                self._loop.close()
        for pool in self.pools.values():
            pool.close()
        if self.endpoint:
            self.endpoint.stop()  # it saves tables and queues on the way out
            if self.endpoint.state_dir:
                log.info("AWS endpoint state saved in %s", self.endpoint.state_dir)
        if self._collector:
            self._collector.stop()

    def run(self) -> None:
        """Start, wait for SIGINT/SIGTERM, stop."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        try:
            self.start()
            while not self.stop_event.wait(0.5):
                pass
            print("\nStopping...", flush=True)
        finally:
            self.stop()
            print("Stopped.", flush=True)


def configure_logging(json_output: bool) -> None:
    renderer = LogRenderer(sys.stdout, json_output=json_output, colour=sys.stdout.isatty())
    root = logging.getLogger("ems.local")
    root.handlers[:] = [RuntimeLogHandler(renderer)]
    root.setLevel(logging.INFO)
    root.propagate = False


