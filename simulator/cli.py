"""`python -m simulator`: send simulated meter readings to the readings queue.

Exit status: 0 when done or stopped with Ctrl-C, 1 when sending failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from simulator.clock import Stopper, floor_to_interval, parse_duration
from simulator.config import DEMO_CONFIG, ConfigError, SimulatorConfig, build_config, read_config_file
from simulator.csv_source import CsvFormatError, CsvMeter, CsvRow, read_rows, rows_for_device
from simulator.cumulative import RegisterMeter, register_differences
from simulator.messages import format_timestamp, parse_timestamp
from simulator.patterns import SyntheticMeter
from simulator.runner import Meter, Plan, Progress, run
from simulator.sender import Retrier, Sender, SenderError, StoppedError, resolve_queue_url

UTC = dt.UTC


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    if text.strip() == "0":
        return 0
    return _positive_int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text) if text.strip() in ("0", "0.0") else _positive_float(text)
    return value


def _duration(text: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _moment(text: str) -> dt.datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Send simulated smart-meter readings to the EMS readings queue (SQS).",
        epilog="Flags override the config file. Without --config and --device, the bundled demo.json is used.",
    )
    devices = parser.add_argument_group("devices")
    devices.add_argument("--config", type=Path, help="JSON settings file (e.g. simulator/demo.json)")
    devices.add_argument("--device", dest="devices", action="append", metavar="ID",
                         help="simulate this device (repeatable); replaces the file's device list")
    devices.add_argument("--base-load", dest="base_load_kwh", type=_non_negative_float, metavar="KWH",
                         help="kWh per interval before the daily pattern (every device)")
    devices.add_argument("--source", choices=("synthetic", "csv"), help="where values come from (every device)")
    devices.add_argument("--csv", type=Path, metavar="FILE",
                         help="timestamp,device_id,value rows to replay by time of day (implies --source csv)")
    devices.add_argument("--cumulative", action=argparse.BooleanOptionalAction, default=None,
                         help="the CSV holds meter-register readings: send their differences")
    devices.add_argument("--registers", action=argparse.BooleanOptionalAction, default=None,
                         help="send each meter's running register (for devices with reading_kind \"register\"); "
                              "with --cumulative it starts at the CSV's first register")
    devices.add_argument("--noise", type=_non_negative_float, metavar="FRACTION",
                         help="standard deviation of the multiplicative noise (default 0.25)")
    devices.add_argument("--timezone", metavar="ZONE", help="time zone of the daily pattern (default UTC)")
    devices.add_argument("--seed", help="seed for reproducible noise (default: a random one, printed)")

    timing = parser.add_argument_group("time")
    timing.add_argument("--interval-minutes", type=_positive_int, metavar="N", help="default 10")
    timing.add_argument("--speed", type=_positive_float, metavar="N",
                        help="simulated time runs N times the wall clock (default 1)")
    timing.add_argument("--start", type=_moment, metavar="ISO",
                        help="first interval, e.g. 2026-11-23T20:00:00Z (default: the current interval)")
    timing.add_argument("--duration", type=_duration, metavar="D", help="simulated time to cover, e.g. 6h, 2d")
    timing.add_argument("--count", type=_positive_int, metavar="N", help="send at most N readings")
    timing.add_argument("--backfill", type=_positive_float, metavar="DAYS",
                        help="first send the past DAYS days up to now, as fast as the queue takes them")
    timing.add_argument("--backfill-only", action="store_true", help="stop once the backfill is sent")
    timing.add_argument("--max-queue-depth", type=_non_negative_int, metavar="N",
                        help="wait while the queue holds more messages than this (default 1000; 0: never)")
    timing.add_argument("--per-message", dest="readings_per_message", type=_positive_int, metavar="N",
                        help="readings in one queue message (default 100: batch messages; 1: one reading each)")

    queue = parser.add_argument_group("queue")
    names = queue.add_mutually_exclusive_group()
    names.add_argument("--queue-name", metavar="NAME", help="default: ems-{stage}-readings")
    names.add_argument("--queue-url", metavar="URL")
    queue.add_argument("--stage", help="default: $EMS_STAGE or local")
    queue.add_argument("--endpoint-url", metavar="URL", help="AWS-compatible endpoint (default: $AWS_ENDPOINT_URL)")
    queue.add_argument("--region", help="default: $AWS_REGION or us-east-1")
    return parser


def load_config(args: argparse.Namespace) -> SimulatorConfig:
    """The config file (the demo one when neither a file nor devices are given) with the flags over it."""
    path = args.config or (None if args.devices else DEMO_CONFIG)
    raw = read_config_file(path) if path else {}
    return build_config(
        raw,
        device_ids=args.devices,
        **{
            name: getattr(args, name)
            for name in ("base_load_kwh", "source", "csv", "cumulative", "registers", "noise", "timezone", "seed",
                         "interval_minutes", "speed", "max_queue_depth", "readings_per_message", "endpoint_url",
                         "region", "stage", "queue_name", "queue_url")
        },
    )


def build_meters(config: SimulatorConfig, seed: str) -> list[Meter]:
    """One meter per configured device."""
    files: dict[Path, list[CsvRow]] = {}
    meters: list[Meter] = []
    for device in config.devices:
        timezone = config.device_value(device, "timezone")
        if config.device_value(device, "source") == "csv":
            path = config.device_value(device, "csv")
            if path is None:
                raise ConfigError(f"device {device.id}: the csv source needs a file (csv / --csv)")
            if path not in files:
                files[path] = read_rows(path)
            rows = rows_for_device(files[path], device.id)
            start_kwh = 0.0
            if config.device_value(device, "cumulative"):
                start_kwh = min(rows, key=lambda row: row.timestamp).value if rows else 0.0
                rows = register_differences(rows)
            meter: Meter = CsvMeter.from_rows(device.id, rows, timezone)
        else:
            device_seed = seed if device.seed is None else str(device.seed)
            start_kwh = 0.0
            meter = SyntheticMeter(device.id, config.device_value(device, "base_load_kwh"), device_seed,
                                   config.device_value(device, "noise"), timezone)
        if config.device_value(device, "registers"):
            meter = RegisterMeter(meter, start_kwh, dt.timedelta(minutes=config.interval_minutes))
        meters.append(meter)
    return meters


def build_plan(args: argparse.Namespace, config: SimulatorConfig, now: dt.datetime) -> Plan:
    """Which intervals to send, from the time flags."""
    interval = dt.timedelta(minutes=config.interval_minutes)
    if args.backfill is not None:
        first = floor_to_interval(now - dt.timedelta(days=args.backfill), interval)
        origin = now
        last_due = now if args.backfill_only else None
    else:
        first = args.start or floor_to_interval(now, interval)
        origin, last_due = first, None
    end = first + args.duration if args.duration else None
    return Plan(first, interval, origin, config.speed, end, last_due, args.count)


def sqs_client(endpoint_url: str | None, region: str, local_keys: Path) -> Any:
    """An SQS client that fails fast (the sender retries); against a local endpoint with no keys
    configured, the local runtime's keys (`local_keys`), else dummy ones."""
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=20)
    core = botocore.session.Session()
    if endpoint_url:
        # Instance roles mean nothing to a local endpoint, and probing for them stalls off EC2.
        resolver = core.get_component("credential_provider")
        for provider in ("iam-role", "container-role"):
            resolver.remove(provider)
        if core.get_credentials() is None and local_keys.exists():
            # The keys of the local runtime's embedded endpoint (made in its data folder).
            core.set_config_variable("credentials_file", str(local_keys))
        if core.get_credentials() is None:
            session = boto3.session.Session(region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
            return session.client("sqs", endpoint_url=endpoint_url, config=config)
    return boto3.session.Session(region_name=region, botocore_session=core).client(
        "sqs", endpoint_url=endpoint_url, config=config
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backfill is not None and args.start is not None:
        parser.error("--start and --backfill exclude each other (a backfill ends now)")
    if args.backfill_only and args.backfill is None:
        parser.error("--backfill-only needs --backfill DAYS")
    try:
        config = load_config(args)
        seed = str(config.seed) if config.seed is not None else str(secrets.randbelow(1_000_000))
        meters = build_meters(config, seed)
    except (ConfigError, CsvFormatError) as exc:
        parser.error(str(exc))
    plan = build_plan(args, config, dt.datetime.now(UTC))

    progress = Progress()
    stopper = Stopper()
    previous = _on_stop_signals(stopper)
    try:
        client = sqs_client(config.resolved_endpoint_url(), config.resolved_region(),
                            Path(".data") / config.resolved_stage() / "aws-credentials")
        retrier = Retrier(stopper, progress.note)
        queue_url = config.queue_url or resolve_queue_url(client, config.resolved_queue_name(), retrier)
        progress.note(
            f"sending {len(meters)} device(s) to {queue_url}: {config.interval_minutes}-minute intervals from "
            f"{format_timestamp(plan.first)}, x{config.speed:g}, seed {seed}"
        )
        sender = Sender(client, queue_url, retrier, max_queue_depth=config.max_queue_depth,
                        readings_per_message=config.readings_per_message)
        summary = run(plan, meters, sender, stopper, progress)
    except StoppedError:  # while waiting for the endpoint, before anything was sent
        print("summary: sent 0, failed 0; stopped on request", flush=True)
        return 0
    except SenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _restore_signals(previous)
    print(f"summary: {summary.describe()}", flush=True)
    if summary.error:
        return 1
    return 0 if summary.stopped or summary.failed == 0 else 1


def _on_stop_signals(stopper: Stopper) -> dict[int, Any]:
    """Ctrl-C (or SIGTERM) asks for a clean stop; a second one quits at once."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopper.requested:
            raise KeyboardInterrupt
        stopper.request()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handle)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
