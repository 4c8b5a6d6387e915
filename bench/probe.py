"""Exact AWS API calls per reading: the app's consumers run in this process with every call counted.

`python -m bench.probe`, with the runtime's environment and a job as JSON on stdin, prints one
JSON line. The runtime's consumers run in its worker processes, where nothing can be counted
without changing them; so this process runs the same handlers the same way:

- a producer (not counted: its requests are the meters') puts the sample on a probe queue,
  all at once behind a depth bound, or at a fixed rate;
- pollers receive from it as the runtime's event sources do (up to ten, a one-second long
  poll, Lambda's record shape), invoke the app's `ingest_readings` with Lambda's event, and
  delete what succeeded;
- what that handler puts on the notifications queue (it really goes there too) is replayed,
  at the times it was sent, onto a second probe queue, consumed the same way by the app's
  `deliver_notifications`.

`{"mode": "rest", ...}` does the same for REST requests: each one through the app's handler
as API Gateway's proxy event, with the calls it made and the time it took.

Every botocore call is counted through `before-call` events, registered on the app's boto3
session and on each botocore session pynamodb makes, and attributed to the phase of the
thread that made it (`ingest-poller`, `ingest`, `notify-poller`, `notify`); calls from
threads the app starts itself (the pusher's parallel sends) belong to the function running
at the time. Read request units
are computed from the items each read returned, by DynamoDB's rules (4 KB steps; half for an
eventually consistent read), since moto reports a constant.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from bench.runtime import PROJECT_DIR, BenchError, BenchRuntime

RESULT_MARK = "bench-probe-result "  # the app logs JSON lines to stdout too
_local = threading.local()


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: names plus values (numbers approximately)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind in ("S", "B"):
        return len(str(inner).encode())
    if kind == "N":
        return math.ceil(len(str(inner).lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("SS", "BS"):
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(math.ceil(len(str(v)) / 2) + 1 for v in inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in inner.items())
    return len(json.dumps(inner))


def read_units(operation: str, parsed: dict[str, Any], consistent: bool) -> float:
    """Read request units of one read, from what it returned."""
    factor = 1.0 if consistent else 0.5
    if operation == "GetItem":
        return max(1, math.ceil(item_bytes(parsed.get("Item") or {}) / 4096)) * factor
    if operation in ("Query", "Scan"):
        total = sum(item_bytes(i) for i in parsed.get("Items", []))
        return max(1, math.ceil(total / 4096)) * factor
    if operation == "BatchGetItem":
        items = [i for table in parsed.get("Responses", {}).values() for i in table]
        return sum(max(1, math.ceil(item_bytes(i) / 4096)) * factor for i in items)
    return 0.0


def billed_writes(operation: str, params: dict[str, Any]) -> tuple[float, set[str]]:
    """The write requests DynamoDB bills a call for, before item size (one an item written; two an
    item in a transaction), and the tables it writes."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem") and "TableName" in params:
        return 1.0, {params["TableName"]}
    if operation == "BatchWriteItem":
        requests = params.get("RequestItems") or {}
        return float(sum(len(items) for items in requests.values())), set(requests)
    if operation == "TransactWriteItems":
        writes = [next(iter(entry.values()), {}) for entry in params.get("TransactItems") or []]
        return 2.0 * len(writes), {w["TableName"] for w in writes if "TableName" in w}
    if operation == "BatchExecuteStatement":  # PartiQL: each write statement is billed as its own write
        targets = [_PARTIQL_WRITE.match(s.get("Statement", "")) for s in params.get("Statements") or []]
        return float(sum(t is not None for t in targets)), {t.group(1) for t in targets if t is not None}
    return 0.0, set()


_PARTIQL_WRITE = re.compile(r'^\s*(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+"?([\w.-]+)"?', re.IGNORECASE)


class Counting:
    """Counts calls per phase; captures what the ingest function sends to the notifications queue."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, Counter[str]] = defaultdict(Counter)
        self.read_units: dict[str, float] = defaultdict(float)
        self.billed_writes: dict[str, float] = defaultdict(float)
        self.tables_written: set[str] = set()
        self.notifications: list[tuple[float, str]] = []
        self.default_phase = "other"

    def phase(self) -> str:
        return getattr(_local, "phase", None) or self.default_phase

    def install(self, events: Any) -> None:
        events.register("before-parameter-build", self._before_parameter_build)
        events.register("before-call", self._before_call)
        events.register("after-call.dynamodb", self._after_dynamodb_call)

    def _before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any],
                                **_: Any) -> None:
        context["bench_consistent"] = bool(params.get("ConsistentRead"))
        billed, tables = billed_writes(model.name, params)
        if billed:
            with self.lock:
                self.billed_writes[self.phase()] += billed
                self.tables_written.update(tables)
        if (model.name == "SendMessage" and str(params.get("QueueUrl", "")).endswith("-notifications")
                and self.phase() == "ingest"):
            with self.lock:
                self.notifications.append((time.monotonic(), str(params.get("MessageBody", ""))))

    def _before_call(self, event_name: str, **_: Any) -> None:
        _before, service, operation = event_name.split(".", 2)
        with self.lock:
            self.calls[self.phase()][f"{service}.{operation}"] += 1

    def _after_dynamodb_call(self, event_name: str, parsed: dict[str, Any], context: dict[str, Any],
                             **_: Any) -> None:
        units = read_units(event_name.rsplit(".", 1)[-1], parsed or {}, bool(context.get("bench_consistent")))
        if units:
            with self.lock:
                self.read_units[self.phase()] += units


class BatchReports(logging.Handler):
    """Collects the readings consumer's "readings batch" log records (counted, writes, alerts)."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != "readings batch":
            return
        for key in ("records", "counted", "duplicates", "retried", "alerts", "write_requests", "write_units"):
            self.totals[key] += getattr(record, key, 0) or 0


class Function:
    """One app handler invoked as Lambda would, timed."""

    def __init__(self, name: str, handler: Any, phase: str) -> None:
        self.name = name
        self.handler = handler
        self.phase = phase
        self.poller_phase = f"{phase}-poller"
        self.durations_ms: list[float] = []
        self.records: list[int] = []
        self.lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        from chalice.local import LambdaContext

        context = LambdaContext(function_name=self.name, memory_size=512, max_runtime_ms=30_000)
        _local.phase = self.phase
        started = time.perf_counter()
        try:
            return self.handler(event, context)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            _local.phase = self.poller_phase
            with self.lock:
                self.durations_ms.append(elapsed_ms)
                self.records.append(len(event["Records"]))


def poll(sqs: Any, queue_url: str, queue_arn: str, function: Function, done: list[int], expected: int,
         deadline: float) -> None:
    """One poller: receive, invoke, delete, as the runtime's event source does (window 0)."""
    from infra.local.sqs import failed_ids, lambda_record

    _local.phase = function.poller_phase
    while time.monotonic() < deadline and done[0] < expected:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            continue
        event = {"Records": [lambda_record(m, queue_arn, "us-east-1") for m in messages]}
        try:
            result = function.invoke(event)
        except Exception as exc:  # noqa: BLE001 - the batch comes back, as with Lambda
            print(json.dumps({"warning": f"{function.name} raised: {exc}"}), file=sys.stderr)
            continue
        failed = failed_ids(result, {m["MessageId"] for m in messages}) or set()
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        if succeeded:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(succeeded)])
        with function.lock:
            done[0] += len(succeeded)


def run_pipeline(sqs_factory: Any, queue_url: str, arn: str, function: Function, expected: int, pollers: int,
                 deadline: float) -> int:
    """Run `pollers` pollers until `expected` messages were handled (or the deadline)."""
    done = [0]
    threads = [threading.Thread(target=poll, args=(sqs_factory(), queue_url, arn, function, done, expected, deadline),
                                daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0) + 5)
    return done[0]


def install_counting() -> tuple[Counting, Any]:
    """Counters on every botocore session of the app, then the app itself (imported only now)."""
    counting = Counting()
    # pynamodb makes its own botocore sessions; each one it makes gets the counters too.
    import pynamodb.connection.base as pynamodb_connection

    make_session = pynamodb_connection.get_session

    def counted_session() -> Any:
        session = make_session()
        counting.install(session)
        return session

    pynamodb_connection.get_session = counted_session  # type: ignore[assignment]
    from chalicelib import aws

    counting.install(aws.session().events)
    import app

    return counting, app


def main() -> None:
    job = json.load(sys.stdin)
    if job.get("mode") == "rest":
        print(RESULT_MARK + json.dumps(rest_requests(job)))
        return
    if job.get("mode") == "silent":
        print(RESULT_MARK + json.dumps(silent_check()))
        return
    if job.get("mode") == "alert":
        print(RESULT_MARK + json.dumps(alert_delivery(job)))
        return
    counting, app = install_counting()
    from chalicelib import aws

    reports = BatchReports()
    logging.getLogger("ems").addHandler(reports)

    import boto3

    from bench.load import ProducerStats, SteadyProducer, produce_paced, readings_in
    from chalicelib.settings import get_settings

    settings = get_settings()
    plain = boto3.session.Session(region_name=settings.region)  # not counted: the meters' side and set-up

    def plain_client(service: str) -> Any:
        return plain.client(service, endpoint_url=settings.aws_endpoint_url)

    def counted_sqs() -> Any:
        return aws.create_client("sqs", endpoint_url=settings.aws_endpoint_url)

    setup = plain_client("sqs")
    prefix = settings.resource_name("bench-probe")
    readings_queue = setup.create_queue(QueueName=f"{prefix}-readings",
                                        Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    notify_queue = setup.create_queue(QueueName=f"{prefix}-notify", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    bodies: list[str] = job["messages"]
    rate = float(job.get("rate_per_s") or 0)
    pollers = int(job.get("pollers", 1))
    timeout_s = float(job.get("timeout_s", 600))
    ingest = Function("ingest_readings", app.ingest_readings, "ingest")
    notify = Function("deliver_notifications", app.deliver_notifications, "notify")
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        # Ingest: the sample through the probe queue and the app's readings consumer.
        if rate > 0:
            producer = SteadyProducer(plain_client, readings_queue, bodies, rate).start()
        else:
            results: dict[str, Any] = {}
            producer_thread = threading.Thread(target=lambda: results.update(stats=produce_paced(
                plain_client, readings_queue, bodies, max_depth=100, threads=1, timeout_s=timeout_s)), daemon=True)
            producer_thread.start()
        counting.default_phase = "ingest"
        handled = run_pipeline(counted_sqs, readings_queue, queue_arn(setup, readings_queue), ingest, len(bodies),
                               pollers, deadline)
        ingest_s = time.monotonic() - started
        producer_stats: ProducerStats | None
        if rate > 0:
            producer_stats = producer.stop()
        else:
            producer_thread.join(10)
            producer_stats = results.get("stats")
        # Notify: what the ingest function sent, replayed at the times it sent it.
        counting.default_phase = "notify"
        captured = list(counting.notifications)
        replayed: list[int] = [0]

        def replay() -> None:
            sender = plain_client("sqs")
            first = captured[0][0] if captured else 0.0
            origin = time.monotonic()
            for at, body in captured:
                wait = origin + (at - first) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sender.send_message(QueueUrl=notify_queue, MessageBody=body)
                replayed[0] += 1

        replayer = threading.Thread(target=replay, daemon=True)
        replayer.start()
        notified = run_pipeline(counted_sqs, notify_queue, queue_arn(setup, notify_queue), notify, len(captured),
                                pollers, time.monotonic() + timeout_s)
        replayer.join(10)
        counting.default_phase = "other"
        item_sizes = largest_items(plain_client("dynamodb"), sorted(counting.tables_written))
    finally:
        for url in (readings_queue, notify_queue):
            try:
                setup.delete_queue(QueueUrl=url)
            except Exception:  # noqa: BLE001, S110 - a leftover probe queue harms nothing
                pass
    print(RESULT_MARK + json.dumps({
        "readings": sum(readings_in(body) for body in bodies),
        "messages": len(bodies),
        "handled": handled,
        "ingest_s": ingest_s,
        "notifications": len(captured),
        "notifications_handled": notified,
        "reports": dict(reports.totals),
        "calls": {phase: dict(counter) for phase, counter in counting.calls.items()},
        "read_units": dict(counting.read_units),
        "billed_writes": dict(counting.billed_writes),
        "functions": {f.name: {"invocations": len(f.durations_ms), "records": sum(f.records),
                               "durations_ms": [round(d, 3) for d in f.durations_ms]} for f in (ingest, notify)},
        "largest_item_bytes": item_sizes,
        "producer": producer_stats.as_dict() if producer_stats else None,
    }))


def rest_requests(job: dict[str, Any]) -> dict[str, Any]:
    """Each request of the job `repeat` times through the app's REST handler, as API Gateway's proxy
    event; the calls each one made and how long it took."""
    counting, app = install_counting()
    from chalice.local import LambdaContext, RouteMatcher

    matcher = RouteMatcher(list(app.app.routes))
    results: dict[str, Any] = {}
    _local.phase = "rest"
    counting.default_phase = "rest"  # the calls of threads a request starts (a fleet page's rows) are its own
    for request in job["requests"]:
        match = matcher.match_route(request["path"])
        headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
        event = {
            "resource": match.route, "path": request["path"], "httpMethod": "GET", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": request.get("query") or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in (request.get("query") or {}).items()} or None,
            "pathParameters": match.captured or None, "stageVariables": None, "body": None,
            "isBase64Encoded": False,
            "requestContext": {"resourcePath": match.route, "httpMethod": "GET", "path": f"/api{request['path']}",
                               "stage": "api", "requestId": "bench", "apiId": "local", "accountId": "000000000000",
                               "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"}},
        }
        durations: list[float] = []
        statuses: Counter[int] = Counter()
        before = Counter(counting.calls["rest"])
        for _ in range(int(job.get("repeat", 20))):
            context = LambdaContext(function_name="api_handler", memory_size=512, max_runtime_ms=30_000)
            started = time.perf_counter()
            response = app.app(event, context)
            durations.append((time.perf_counter() - started) * 1000)
            statuses[int(response.get("statusCode", 0))] += 1
        made = Counter(counting.calls["rest"])
        made.subtract(before)
        repeat = len(durations)
        ordered = sorted(durations[1:] or durations)  # the first one creates the clients
        results[request["name"]] = {
            "calls_per_request": {op: n / repeat for op, n in sorted(made.items()) if n},
            "median_ms": ordered[len(ordered) // 2], "statuses": dict(statuses),
        }
    return results


def silent_check() -> dict[str, Any]:
    """One whole silent check through the app's code: the schedule's step, then each shard message
    (and each continuation) handled as the consumer handles it; its calls, time and alerts raised."""
    counting, _app = install_counting()
    from chalicelib.monitoring import silent

    sent: list[Any] = []
    watch = silent.SilenceWatch(send=sent.extend)
    _local.phase = "silent"
    counting.default_phase = "silent"
    started = time.perf_counter()
    watch.start()  # its messages are handled here, not sent: the one SendMessageBatch is counted below
    raised = 0
    while sent:
        raised += watch.check(sent.pop(0))
    elapsed = time.perf_counter() - started
    calls = dict(counting.calls["silent"])
    calls["sqs.SendMessageBatch"] = calls.get("sqs.SendMessageBatch", 0) + 1
    return {"calls": calls, "seconds": elapsed, "raised": raised}


def alert_delivery(job: dict[str, Any]) -> dict[str, Any]:
    """One `alert.raised` message for `job["device_id"]` handled by the app's notifications
    consumer as Lambda gives it: its calls (finding the admins' and owners' sockets, posting to
    them, forgetting the gone ones) and its time."""
    counting, app = install_counting()
    from chalicelib.messages import Alert, AlertRaised

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = Alert(id=f"{job['device_id']}:{now}", kind="over_consumption", device_id=job["device_id"],
                  device_name="Bench meter", hour_start=now[:14] + "00:00Z", total_kwh=3.0, max_hourly_kwh=2.0,
                  created_at=now)
    record = {"messageId": "alert-1", "receiptHandle": "alert-1", "body": AlertRaised(alert=alert).body(),
              "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
              "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:notifications", "awsRegion": "us-east-1"}
    function = Function("deliver_notifications", app.deliver_notifications, "notify")
    counting.default_phase = "notify"
    said: list[dict[str, Any]] = []

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append({"message": record.getMessage(), **{k: v for k, v in record.__dict__.items()
                                                           if k in ("pushed", "owners", "connection_id", "error")}})

    logging.getLogger("ems").addHandler(Said())
    result = function.invoke({"Records": [record]})
    return {"calls": dict(counting.calls["notify"]), "seconds": function.durations_ms[0] / 1000, "result": result,
            "log": said}


def run_silent(runtime: BenchRuntime) -> dict[str, Any]:
    """AWS calls, time and alerts of one silent check (see `silent_check`), beside `runtime`."""
    return _run_probe(runtime, {"mode": "silent"}, "silent-check")


def run_alert(runtime: BenchRuntime, device_id: str) -> dict[str, Any]:
    """AWS calls and time of one alert's delivery (see `alert_delivery`), beside `runtime`."""
    return _run_probe(runtime, {"mode": "alert", "device_id": device_id}, "alert")


def _run_probe(runtime: BenchRuntime, job: dict[str, Any], what: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.probe"], input=json.dumps(job),
                          cwd=PROJECT_DIR, env=runtime.app_env(), capture_output=True, text=True, timeout=600,
                          check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            return result
    raise BenchError(f"the {what} probe failed ({done.returncode}): {done.stderr.strip()[-1500:]}")


def queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def largest_items(dynamodb: Any, tables: list[str], sample: int = 300) -> dict[str, int]:
    """The largest item among the first `sample` of each table written (for write units)."""
    sizes: dict[str, int] = {}
    for table in tables:
        items = dynamodb.scan(TableName=table, Limit=sample).get("Items", [])
        sizes[table] = max((item_bytes(i) for i in items), default=0)
    return sizes


def run(runtime: BenchRuntime, bodies: list[str], *, rate_per_s: float = 0.0, pollers: int = 1,
        timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the probe beside `runtime` over the messages `bodies`; its result (see `main`)."""
    job = {"messages": bodies, "rate_per_s": rate_per_s, "pollers": pollers, "timeout_s": timeout_s}
    try:
        done = subprocess.run([sys.executable, "-m", "bench.probe"], input=json.dumps(job), cwd=PROJECT_DIR,
                              env=runtime.app_env(), capture_output=True, text=True, timeout=2 * timeout_s + 120,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the probe did not finish in {exc.timeout:.0f} s") from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            if result["handled"] < len(bodies):
                raise BenchError(f"the probe handled {result['handled']} of {len(bodies)} messages")
            return result
    raise BenchError(f"the probe failed ({done.returncode}): {done.stderr.strip()[-1500:]}")


def run_rest(runtime: BenchRuntime, requests: list[dict[str, Any]], repeat: int = 20) -> dict[str, Any]:
    """AWS calls and in-process time per REST request (see `rest_requests`), beside `runtime`."""
    job = {"mode": "rest", "requests": requests, "repeat": repeat}
    done = subprocess.run([sys.executable, "-m", "bench.probe"], input=json.dumps(job), cwd=PROJECT_DIR,
                          env=runtime.app_env(), capture_output=True, text=True, timeout=600, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            return result
    raise BenchError(f"the REST probe failed ({done.returncode}): {done.stderr.strip()[-1500:]}")


def per_reading(result: dict[str, Any]) -> dict[str, Any]:
    """Calls, units, invocations and durations per reading, by phase, from a probe result."""
    readings = max(result["readings"], 1)
    calls = {phase: sum(ops.values()) / readings for phase, ops in result["calls"].items()}
    by_operation: Counter[str] = Counter()
    for ops in result["calls"].values():
        by_operation.update(ops)
    functions = {}
    for name, f in result["functions"].items():
        durations = f["durations_ms"]
        functions[name] = {
            "invocations_per_reading": f["invocations"] / readings,
            "records_per_invocation": f["records"] / f["invocations"] if f["invocations"] else 0.0,
            "mean_duration_ms": sum(durations) / len(durations) if durations else 0.0,
            "billed_ms_per_reading": sum(math.ceil(d) for d in durations) / readings,
        }
    return {
        "calls_per_reading": calls,
        "consumer_calls_per_reading": calls.get("ingest", 0.0),
        "operations_per_reading": {op: n / readings for op, n in sorted(by_operation.items())},
        "read_units_per_reading": {phase: units / readings for phase, units in result["read_units"].items()},
        "billed_writes_per_reading": sum(result.get("billed_writes", {}).values()) / readings,
        "functions": functions,
    }


if __name__ == "__main__":
    main()
