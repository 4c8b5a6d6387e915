"""`python -m infra.local`: run the app locally (see `--help`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.local.endpoint import EndpointError
from infra.local.runtime import PROJECT_DIR, LocalRuntime, RuntimeConfig, StartupError, configure_logging
from infra.package import API_BURST_LIMIT, API_RATE_LIMIT


def parse_args(argv: list[str] | None = None) -> RuntimeConfig:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m infra.local",
        description="Run the Chalice app locally: REST, WebSocket, SQS consumers, schedules "
        "and an AWS endpoint (embedded ministack unless AWS_ENDPOINT_URL is set).",
    )
    parser.add_argument("--app-dir", type=Path, default=PROJECT_DIR, help="folder with app.py")
    parser.add_argument("--stage", default=env.get("EMS_STAGE", "local"))
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--host", default=env.get("EMS_LOCAL_HOST", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--rest-port", type=int, default=int(env.get("EMS_LOCAL_REST_PORT", 8000)))
    parser.add_argument("--ws-port", type=int, default=int(env.get("EMS_LOCAL_WS_PORT", 8001)))
    parser.add_argument("--endpoint-port", type=int, default=int(env.get("EMS_LOCAL_ENDPOINT_PORT", 4566)),
                        help="port of the embedded AWS endpoint")
    parser.add_argument("--endpoint-url", default=env.get("AWS_ENDPOINT_URL"),
                        help="use this AWS endpoint (e.g. LocalStack) instead of the embedded one")
    parser.add_argument("--data-dir", type=Path, help="state folder (default .data/STAGE)")
    parser.add_argument("--frontend-dir", type=Path, default=PROJECT_DIR / "frontend" / "dist")
    parser.add_argument("--concurrency", type=int, default=int(env.get("EMS_LOCAL_CONCURRENCY", 4)),
                        help="execution environments of the REST function")
    parser.add_argument("--rest-rate-limit", type=float, default=float(env.get("EMS_LOCAL_REST_RATE_LIMIT", API_RATE_LIMIT)),
                        help="REST requests a second before 429s, as the deployed stage throttles (0: off)")
    parser.add_argument("--rest-burst-limit", type=int, default=int(env.get("EMS_LOCAL_REST_BURST_LIMIT", API_BURST_LIMIT)))
    parser.add_argument("--sqs-concurrency", type=int, default=int(env.get("EMS_LOCAL_SQS_CONCURRENCY", 2)),
                        help="pollers per SQS event source without maximum_concurrency")
    parser.add_argument("--schedule-time-scale", type=float, default=1.0,
                        help="run schedules this many times faster than the clock")
    parser.add_argument("--save-interval", type=float, default=30.0,
                        help="seconds after a change until the embedded endpoint saves its state; 0: only on stop")
    parser.add_argument("--no-persist", action="store_true", help="start empty and save nothing")
    parser.add_argument("--visibility-timeout", type=int, default=10, help="queues' visibility timeout, seconds")
    parser.add_argument("--max-receive-count", type=int, default=3, help="deliveries before a message is dead-lettered")
    parser.add_argument("--ws-idle-timeout", type=float, default=600.0)
    parser.add_argument("--ws-max-duration", type=float, default=7200.0)
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=None,
                        help="seed the demo users and devices (default: on for the local stage of this app)")
    parser.add_argument("--simulator", action=argparse.BooleanOptionalAction, default=None,
                        help="run the meter simulator for the demo devices (default: with --demo)")
    parser.add_argument("--simulator-backfill-days", type=int, default=7,
                        help="days of past readings the simulator sends first")
    parser.add_argument("--log-format", choices=["pretty", "json"], default=env.get("EMS_LOCAL_LOG_FORMAT", "pretty"))
    args = parser.parse_args(argv)
    for name in ("rest_port", "ws_port", "endpoint_port"):
        if not 0 < getattr(args, name) < 65536:
            parser.error(f"--{name.replace('_', '-')} must be a port number")
    return RuntimeConfig(
        app_dir=args.app_dir.resolve(),
        stage=args.stage,
        region=args.region,
        host=args.host,
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        endpoint_port=args.endpoint_port,
        endpoint_url=args.endpoint_url or None,
        data_dir=(args.data_dir or PROJECT_DIR / ".data" / args.stage).resolve(),
        frontend_dir=args.frontend_dir,
        rest_concurrency=args.concurrency,
        rest_rate_limit=args.rest_rate_limit,
        rest_burst_limit=args.rest_burst_limit,
        sqs_concurrency=args.sqs_concurrency,
        schedule_time_scale=args.schedule_time_scale,
        save_interval_s=args.save_interval,
        persist=not args.no_persist,
        queue_visibility_timeout_s=args.visibility_timeout,
        queue_max_receive_count=args.max_receive_count,
        ws_idle_timeout_s=args.ws_idle_timeout,
        ws_max_duration_s=args.ws_max_duration,
        log_json=args.log_format == "json",
        seed=DEMO_SEED if _wants_demo(args) else None,
        simulator_args=_simulator_args(args),
    )


DEMO_SEED = "chalicelib.demo:seed"


def _wants_demo(args: argparse.Namespace) -> bool:
    if args.demo is not None:
        return bool(args.demo)
    return args.stage == "local" and args.app_dir.resolve() == PROJECT_DIR


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging(config.log_json)
    runtime = LocalRuntime(config)
    try:
        runtime.run()
    except (StartupError, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _simulator_args(args: argparse.Namespace) -> list[str] | None:
    wanted = args.simulator if args.simulator is not None else _wants_demo(args)
    if not wanted:
        return None
    demo = PROJECT_DIR / "simulator" / "demo.json"
    return ["--config", str(demo), "--backfill", str(args.simulator_backfill_days)]


if __name__ == "__main__":
    sys.exit(main())
