"""`python -m bench`: the benchmark suite against the local runtime; a table, and JSON in bench/results/."""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Self

from bench import alerts, cost, datasize, fanout, fleet, ingestion, rest
from bench.report import Figure, load_average, machine, table, write_json
from bench.runtime import BenchError, BenchRuntime

BENCHMARKS = ("ingestion", "datasize", "alerts", "rest", "fanout", "cost", "fleet")
OWN_RUNTIME = ("ingestion", "datasize")  # each starts runtimes of its own
RUNNERS: dict[str, Callable[..., tuple[list[Figure], dict[str, Any]]]] = {
    "alerts": alerts.run, "rest": rest.run, "fanout": fanout.run, "cost": cost.run, "fleet": fleet.run,
}
SHARED_CONSUMERS = 2  # the runtime's default event-source concurrency, used by the shared runtime
DEFAULT_BACKGROUND_RATE = 10.0
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated benchmarks to run, of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere, for a check in a few minutes")
    parser.add_argument("--devices", type=int, help="ingestion: devices (default 200; quick 20)")
    parser.add_argument("--readings-per-device", type=int, help="ingestion: readings each (default 144, a day)")
    parser.add_argument("--consumers", default="2",
                        help="ingestion: consumer concurrencies to run (default 2, the runtime's own; e.g. 1,2,4)")
    parser.add_argument("--alerts", type=int, help="alert latency: alerts per condition (default 200)")
    parser.add_argument("--background-rate", type=float,
                        help="alert latency: background readings/s (default: half of what ingestion sustained "
                             f"with {SHARED_CONSUMERS} consumers in this run, else {DEFAULT_BACKGROUND_RATE:g})")
    parser.add_argument("--sockets", type=int, help="fan-out: open sockets (default 500)")
    parser.add_argument("--rest-seconds", type=float, help="REST: seconds per route and level (default 8)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    try:
        args.consumer_levels = tuple(int(c) for c in args.consumers.split(",") if c)
    except ValueError:
        parser.error("--consumers takes numbers, e.g. 1,2,4")
    return args


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "ingestion": ingestion.Options(
            devices=args.devices or (20 if quick else 200),
            readings_per_device=args.readings_per_device or (18 if quick else 144),
            consumers=args.consumer_levels,
            ceiling_s=2.0 if quick else 5.0,
            probe_readings=100 if quick else 600,
        ),
        "alerts": alerts.Options(alerts=args.alerts or (30 if quick else 200)),
        "rest": rest.Options(seconds=args.rest_seconds or (2.0 if quick else 8.0)),
        "fanout": fanout.Options(sockets=args.sockets or (100 if quick else 500), repetitions=2 if quick else 3),
        "cost": cost.Options(sample_readings=100 if quick else 300, sample_devices=20 if quick else 50),
        "fleet": fleet.Options(sizes=(100, 1_000) if quick else (1_000, 10_000), seconds=2.0 if quick else 5.0),
        "datasize": datasize.Options(devices=20 if quick else 200, queued=1000 if quick else 10_000,
                                     requests=60 if quick else 200),
    }


class LoadSampler:
    """The 1-minute load average every `every_s` seconds while the suite runs (the machine may be shared)."""

    def __init__(self, every_s: float = 15.0) -> None:
        self.samples: list[float] = []
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            load = load_average()
            if load:
                self.samples.append(load[0])
            if self._stop.wait(self._every_s):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict[str, float | int | None]:
        values = self.samples
        return {"samples": len(values), "min": min(values, default=None), "max": max(values, default=None),
                "mean": round(sum(values) / len(values), 2) if values else None}


def background_rate(ingestion_details: dict[str, Any] | None) -> float:
    """Half of what the pipeline sustained in this run with the shared runtime's consumers (a load it can carry)."""
    settings = (ingestion_details or {}).get("settings", {})
    measured = settings.get(f"interleaved/{SHARED_CONSUMERS}") or next(iter(settings.values()), None)
    if not measured:
        return DEFAULT_BACKGROUND_RATE
    return round(0.5 * float(measured["readings_per_s"]), 1)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [b for b in BENCHMARKS if b in args.only.split(",")]
    options = options_from(args)
    started = time.monotonic()
    info = machine()
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    failures: dict[str, str] = {}

    def attempt(name: str, action: Callable[[], tuple[list[Figure], dict[str, Any]]]) -> None:
        bench_started = time.monotonic()
        try:
            found, detail = action()
            figures.extend(found)
            details[name] = detail | {"seconds": time.monotonic() - bench_started, "load_average": load_average()}
        except Exception as exc:  # noqa: BLE001 - one benchmark failing must not lose the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed: {failures[name]}")
            traceback.print_exc()
            figures.append(Figure(name, "did not complete", None, note=failures[name], target_op=">=", target=0))

    sampler = LoadSampler().__enter__()
    try:
        if "ingestion" in wanted:
            attempt("ingestion", lambda: ingestion.run(options["ingestion"], log))
        if "datasize" in wanted:
            attempt("datasize", lambda: datasize.run(options["datasize"], log))
        shared = [b for b in wanted if b not in OWN_RUNTIME]
        if shared:
            log(f"starting the runtime for {', '.join(shared)}")
            with BenchRuntime(sqs_concurrency=SHARED_CONSUMERS, label="bench") as runtime:
                for name in shared:
                    if name == "alerts":
                        rate = args.background_rate or background_rate(details.get("ingestion"))
                        options["alerts"] = replace(options["alerts"], background_rate_per_s=rate)
                    attempt(name, partial(RUNNERS[name], runtime, options[name], log))
                    # What one benchmark left queued must not slow the next one down.
                    try:
                        runtime.wait_drained()
                    except BenchError as exc:
                        log(f"after {name}: {exc}")
    except KeyboardInterrupt:
        log("interrupted; the runtime was stopped")
        failures["interrupted"] = "KeyboardInterrupt"
    finally:
        sampler.__exit__()
    total_s = time.monotonic() - started
    print()
    print(table(figures))
    during = sampler.summary()
    print(f"\n{cost.PRICES_NOTE}. Total run time {total_s / 60:.1f} min; 1-minute load average "
          f"{during['min']}-{during['max']} (mean {during['mean']}) on {info['cores']} cores.")
    info["load_average_at_end"] = load_average()
    info["load_average_during_run"] = sampler.summary()
    write_json(args.output, figures, {
        "machine": info, "run_seconds": total_s, "benchmarks": wanted, "quick": args.quick,
        "options": {k: v.__dict__ for k, v in options.items() if k in wanted},
        "failures": failures, "details": details,
    })
    print(f"Results written to {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
