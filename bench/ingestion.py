"""Ingestion: readings through the readings queue and the consumer, beside the endpoint's own ceiling.

For each shape and consumer concurrency (a fresh runtime with `--sqs-concurrency N`; the
default is the runtime's own): devices are made over REST; the endpoint's ceilings are
measured from one client (single-item UpdateItem/s; SQS send/receive/delete cycles/s);
then a simulated day of every device goes through the readings queue as batch messages,
every message sent `copies` times, the producers paced so the queue stays shallow. Shapes:
interleaved (the real-time one: a message holds one interval of many devices) and
device-ordered (backfills and CSV files: a message holds consecutive readings of one device). Throughput runs
from the first send to the log line of the batch that completed the count; write requests
and billed units come from the consumer's own "readings batch" lines; the stored hourly
totals are checked against the number sent. At the first concurrency, the probe (see
`bench.probe`) counts every AWS call per reading of the same code path on a sample, then on the
same sample sent as cumulative registers to as many register devices (`reading_kind` "register"),
so that the two costs per reading are measured side by side in one run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench import probe
from bench.load import READINGS_PER_DAY, SHAPES, batch_messages, interval_readings, produce_paced
from bench.report import Figure
from bench.runtime import BenchError, BenchRuntime, CpuMeter, powertools_time

GROUP = "ingestion"
DAY = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
PROBE_DAY = dt.datetime(2026, 6, 16, tzinfo=dt.UTC)
LIMIT_KWH = 1000.0  # no alerts here: they are measured on their own


@dataclass(frozen=True)
class Options:
    devices: int = 200
    readings_per_device: int = READINGS_PER_DAY
    consumers: tuple[int, ...] = (2,)
    shapes: tuple[str, ...] = SHAPES
    per_message: int = 100  # readings in one batch message, as the simulator sends them
    copies: int = 3  # each message sent this many times (a producer's retries, a replayed file)
    max_depth: int = 50
    producer_threads: int = 2
    ceiling_s: float = 5.0
    probe_readings: int = 600
    timeout_s: float = 1800.0


def update_item_ceiling(runtime: BenchRuntime, seconds: float, clients: int = 1,
                        max_ops: int = 50_000) -> dict[str, Any]:
    """Single-item UpdateItems per second from `clients` clients (threads, each its own client)."""
    table = runtime.name(f"bench-ceiling-{clients}")
    runtime.client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "device_id", "AttributeType": "S"},
                              {"AttributeName": "hour_start", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "device_id", "KeyType": "HASH"},
                   {"AttributeName": "hour_start", "KeyType": "RANGE"}],
    )
    counts = [0] * clients
    ready = threading.Barrier(clients + 1)
    go = threading.Event()
    ends_at = [0.0]

    def client(slot: int) -> None:
        dynamodb = runtime.own_client("dynamodb")

        def update(i: int) -> None:
            dynamodb.update_item(
                TableName=table, Key={"device_id": {"S": f"d{slot}-{i % 100}"},
                                      "hour_start": {"S": "2026-06-15T00:00:00Z"}},
                UpdateExpression="ADD total_kwh :kwh, reading_count :one",
                ExpressionAttributeValues={":kwh": {"N": "0.125"}, ":one": {"N": "1"}},
            )

        for i in range(10):
            update(i)
        ready.wait(60)
        go.wait(60)
        while time.perf_counter() < ends_at[0] and counts[slot] < max_ops // clients:
            update(counts[slot])
            counts[slot] += 1

    threads = [threading.Thread(target=client, args=(slot,), daemon=True) for slot in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(60)
    started = time.perf_counter()
    ends_at[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    runtime.client("dynamodb").delete_table(TableName=table)
    return {"per_s": sum(counts) / elapsed, "operations": sum(counts), "seconds": elapsed, "clients": clients}


def sqs_cycle_ceiling(runtime: BenchRuntime, seconds: float, max_cycles: int = 50_000) -> dict[str, Any]:
    """Send + receive + delete cycles of one message per second from one client."""
    sqs = runtime.own_client("sqs")
    url = sqs.create_queue(QueueName=runtime.name("bench-ceiling"))["QueueUrl"]

    def cycle() -> None:
        sqs.send_message(QueueUrl=url, MessageBody='{"timestamp": "2026-06-15T00:00:00Z"}')
        for _attempt in range(5):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages")
            if messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
                return
        raise BenchError("the ceiling queue lost a message")

    for _ in range(10):
        cycle()
    count = 0
    started = time.perf_counter()
    end = started + seconds
    while time.perf_counter() < end and count < max_cycles:
        cycle()
        count += 1
    elapsed = time.perf_counter() - started
    sqs.delete_queue(QueueUrl=url)
    return {"per_s": count / elapsed, "cycles": count, "seconds": elapsed}


def stored_reading_count(runtime: BenchRuntime) -> int:
    """Readings counted in the hourly-totals table (a scan; the check that nothing was lost or doubled)."""
    dynamodb = runtime.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": runtime.name("hourly-totals"), "ProjectionExpression": "reading_count"}
    total = 0
    for _page in range(10_000):
        page = dynamodb.scan(**kwargs)
        total += sum(int(i["reading_count"]["N"]) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


def run_setting(runtime: BenchRuntime, options: Options, shape: str, with_probe: bool) -> dict[str, Any]:
    """One concurrency: set up, ceilings, the day through the pipeline, (the probe)."""
    setup_started = time.monotonic()
    # A household per meter, as a fleet has: the live updates' owners differ from device to device.
    households = runtime.register_users(options.devices)
    devices = runtime.create_devices(options.devices, [], LIMIT_KWH, prefix="ing",
                                     owners_by_device=[[household] for household in households])
    setup_s = time.monotonic() - setup_started
    update_ceiling = update_item_ceiling(runtime, options.ceiling_s)
    update_ceiling_parallel = update_item_ceiling(runtime, options.ceiling_s, clients=4)
    sqs_ceiling = sqs_cycle_ceiling(runtime, options.ceiling_s)

    readings = interval_readings(devices, DAY, options.readings_per_device)
    expected = len(readings)  # unique readings: the copies count nothing
    messages = batch_messages(readings, options.per_message, shape)
    bodies = [body for _copy in range(options.copies) for body in messages]
    queue_url = runtime.queue_url("readings")
    batches = runtime.follow("readings batch")
    errors_from = runtime.mark()
    produced: dict[str, Any] = {}

    def produce() -> None:
        try:
            produced["stats"] = produce_paced(runtime.own_client, queue_url, bodies, max_depth=options.max_depth,
                                              threads=options.producer_threads, timeout_s=options.timeout_s)
        except Exception as exc:  # noqa: BLE001 - reported below
            produced["error"] = exc

    producer = threading.Thread(target=produce, name="ingestion-producer", daemon=True)
    cpu = CpuMeter(runtime)
    producer.start()
    counted = records = invocations = write_requests = 0
    write_units = 0.0
    duplicates = retried = 0
    last_batch_at: float | None = None
    quiet_since = time.monotonic()
    settled = False  # every reading is in the table though the batch lines count fewer (see below)
    done = False  # every copy sent and consumed: the run ends with the last batch of the last copy
    deadline = time.monotonic() + options.timeout_s
    while not done and time.monotonic() < deadline and "error" not in produced:
        new = batches.new()
        for batch in new:
            counted += int(batch.get("counted", 0))
            records += int(batch.get("records", 0))
            duplicates += int(batch.get("duplicates", 0))
            retried += int(batch.get("retried", 0))
            invocations += 1
            write_requests += int(batch.get("write_requests", 0))
            write_units += float(batch.get("write_units", 0.0))
            last_batch_at = powertools_time(str(batch.get("timestamp"))) or time.time()
        if new:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1 and "stats" in produced:
            drained = runtime.queue_depth(queue_url) == 0
            # A group whose write failed on the client after it was applied comes back and is then
            # found already counted: a duplicate in the lines, yet counted once in the table.
            settled = settled or (drained and counted < expected and stored_reading_count(runtime) >= expected)
            done = drained and (counted >= expected or settled)
            quiet_since = time.monotonic()
        if not done:
            time.sleep(0.1)
    detected_at = time.time()
    cpu_used = cpu.stop()
    producer.join(30)
    if "error" in produced:
        raise BenchError(f"ingestion producer: {produced['error']}")
    if not done:
        raise BenchError(f"{counted} of {expected} readings counted, the queue not drained, in {options.timeout_s:.0f} s")
    stats = produced["stats"]
    first_send_at = stats.first_send_at
    assert first_send_at is not None and last_batch_at is not None
    elapsed = max(last_batch_at - first_send_at, 1e-3)
    stored = stored_reading_count(runtime)
    result: dict[str, Any] = {
        "devices": len(devices),
        "readings": expected,
        "counted": counted,
        "stored_reading_count": stored,
        "elapsed_s": elapsed,
        "detection_lag_s": detected_at - last_batch_at,
        "readings_per_s": expected / elapsed,
        "invocations": invocations,
        "records_per_invocation": records / invocations if invocations else 0.0,
        "duplicates": duplicates,
        "retried": retried,
        "write_requests": write_requests,
        "write_units_reported": write_units,
        "write_requests_per_reading": write_requests / expected,
        "write_units_per_reading": write_units / expected,
        "update_item_ceiling": update_ceiling,
        "update_item_ceiling_4_clients": update_ceiling_parallel,
        "sqs_cycle_ceiling": sqs_ceiling,
        "producer": stats.as_dict(),
        "setup_s": setup_s,
        "cpu": cpu_used,
        "errors": runtime.errors(errors_from),
        "warnings": runtime.warnings(errors_from),
    }
    if stored != counted:
        result["warning"] = f"the table holds {stored} readings for {counted} counted"
    if with_probe and options.probe_readings > 0:
        intervals = math.ceil(options.probe_readings / len(devices))
        # The real-time case at its worst: every reading of a batch in a device-hour of its own.
        sample = interval_readings(devices, PROBE_DAY, intervals, every=dt.timedelta(hours=1))[: options.probe_readings]
        probed = probe.run(runtime, batch_messages(sample, options.per_message, "interleaved"), rate_per_s=0.0,
                           pollers=1)
        result["probe"] = {"summary": probe.per_reading(probed), "raw": _without_durations(probed)}
        result["register_probe"] = register_probe(runtime, options, households, len(devices), intervals)
    return result


def as_registers(bodies: list[str], start_kwh: float = 48_000.0) -> list[str]:
    """Interval readings turned into each device's running register: the register at a reading's
    time, from `start_kwh`, grows by the interval readings before it (the same use, as registers)."""
    registers: dict[str, float] = {}
    out = []
    for body in bodies:
        reading = json.loads(body)
        value = registers.get(reading["device_id"], start_kwh)
        out.append(json.dumps({**reading, "measurement_value": round(value, 6)}))
        registers[reading["device_id"]] = value + float(reading["measurement_value"])
    return out


def register_probe(runtime: BenchRuntime, options: Options, households: list[str], count: int,
                   intervals: int) -> dict[str, Any]:
    """The probe's sample as registers of register devices that reported before (the steady state:
    each reading has an earlier one), every reading in a device-hour of its own."""
    devices = runtime.create_devices(count, [], LIMIT_KWH, prefix="reg",
                                     owners_by_device=[[household] for household in households[:count]],
                                     fields={"reading_kind": "register"})
    baseline = as_registers(interval_readings(devices, PROBE_DAY - dt.timedelta(days=1), 1))
    sqs, queue_url = runtime.client("sqs"), runtime.queue_url("readings")
    for body in batch_messages(baseline, options.per_message, "interleaved"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    runtime.wait_drained()
    sample = as_registers(interval_readings(devices, PROBE_DAY, intervals, every=dt.timedelta(hours=1))
                          )[: options.probe_readings]
    probed = probe.run(runtime, batch_messages(sample, options.per_message, "interleaved"), rate_per_s=0.0, pollers=1)
    return {"summary": probe.per_reading(probed), "raw": _without_durations(probed)}


def _without_durations(result: dict[str, Any]) -> dict[str, Any]:
    trimmed = dict(result)
    trimmed["functions"] = {name: {k: v for k, v in f.items() if k != "durations_ms"}
                            for name, f in result["functions"].items()}
    return trimmed


def run(options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    """Every concurrency in turn, each on a fresh runtime; the figures and the details."""
    figures: list[Figure] = []
    details: dict[str, Any] = {"options": options.__dict__, "settings": {}}
    targets = {"interleaved": 400.0, "device-ordered": 2000.0}  # unique readings/s
    for shape, concurrency in [(shape, c) for shape in options.shapes for c in options.consumers]:
        log(f"ingestion: {options.devices} devices x {options.readings_per_device} readings, {shape}, "
            f"x{options.copies}, {concurrency} consumer(s)")
        name = f"{shape}, {concurrency} consumer{'s' if concurrency > 1 else ''}"
        first = (shape, concurrency) == (options.shapes[0], options.consumers[0])
        try:
            with BenchRuntime(sqs_concurrency=concurrency, label=f"ingest{concurrency}") as runtime:
                result = run_setting(runtime, options, shape, with_probe=first)
        except BenchError as exc:  # the other settings still run
            log(f"  failed: {exc}")
            details["settings"][f"{shape}/{concurrency}"] = {"error": str(exc)}
            figures.append(Figure(GROUP, f"unique readings/s, {name}", None, "/s", target_op=">=",
                                  target=targets.get(shape), note=f"did not complete: {exc}"))
            continue
        details["settings"][f"{shape}/{concurrency}"] = result
        log(f"  {result['readings_per_s']:.1f} readings/s; UpdateItem ceiling "
            f"{result['update_item_ceiling']['per_s']:.1f}/s; "
            f"{result['write_requests_per_reading']:.3f} writes/reading")
        figures.append(Figure(GROUP, f"unique readings/s, {name}", result["readings_per_s"], "/s",
                              baseline=result["update_item_ceiling"]["per_s"], baseline_name="UpdateItem/s, 1 client",
                              target_op=">=", target=targets.get(shape)))
        figures.append(Figure(GROUP, f"readings/s vs 4 writing clients, {name}", result["readings_per_s"], "/s",
                              baseline=result["update_item_ceiling_4_clients"]["per_s"],
                              baseline_name="UpdateItem/s, 4 clients"))
        figures.append(Figure(GROUP, f"readings/s vs SQS cycles, {name}", result["readings_per_s"], "/s",
                              baseline=result["sqs_cycle_ceiling"]["per_s"],
                              baseline_name="send+receive+delete/s, 1 client"))
        figures.append(Figure(GROUP, f"write requests/reading, {name}", result["write_requests_per_reading"],
                              target_op="<=", target=1.0, decimals=5,
                              note=f"{result['duplicates']} redelivered, {result['retried']} retried"))
        figures.append(Figure(GROUP, f"endpoint CPU while ingesting, {name}",
                              result["cpu"]["cores_used"].get("endpoint (ministack)"), "cores", baseline=1.0,
                              baseline_name="one core: one process, one GIL"))
        if "probe" in result:
            summary = result["probe"]["summary"]
            calls = summary["calls_per_reading"]
            writes = summary["operations_per_reading"].get("dynamodb.UpdateItem", 0.0)
            figures.append(Figure(GROUP, "AWS calls/reading, readings consumer, real-time case",
                                  summary["consumer_calls_per_reading"], baseline=writes,
                                  baseline_name="its UpdateItems"))
            figures.append(Figure(GROUP, "AWS calls/reading, whole path, real-time case", sum(calls.values()),
                                  target_op="<=", target=1.3,
                                  note="every reading in a device-hour of its own; pollers and both consumers"))
            registers = result["register_probe"]["summary"]
            operations = registers["operations_per_reading"]
            figures.append(Figure(GROUP, "AWS calls/reading, readings consumer, register devices, real-time case",
                                  registers["consumer_calls_per_reading"], baseline=summary["consumer_calls_per_reading"],
                                  baseline_name="interval devices, same run",
                                  note=", ".join(f"{op.split('.')[-1]} {n:.2f}" for op, n in operations.items()
                                                 if op.startswith("dynamodb."))))
            figures.append(Figure(GROUP, "AWS calls/reading, whole path, register devices, real-time case",
                                  sum(registers["calls_per_reading"].values()), baseline=sum(calls.values()),
                                  baseline_name="interval devices, same run"))
    return figures, details
