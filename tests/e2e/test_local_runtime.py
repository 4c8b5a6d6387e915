"""The local runtime, driven through its real edges with the test-only app in tests/runtime_app.

Given a running `python -m infra.local`, real WebSocket clients, HTTP requests and SQS
messages go in, and what the app recorded in DynamoDB and pushed to clients comes out.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.harness import PROJECT_DIR, RuntimeProcess, endpoint_pids, port_is_free, wait_for

APP_DIR = PROJECT_DIR / "tests" / "runtime_app"
TOKEN = "let-me-in"
MAX_RECEIVE_COUNT = 2


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    process = RuntimeProcess(
        tmp_path_factory.mktemp("runtime"),
        app_dir=APP_DIR,
        extra_args=[
            "--visibility-timeout", "1",
            "--max-receive-count", str(MAX_RECEIVE_COUNT),
            "--schedule-time-scale", "60",
            "--log-format", "json",
        ],
    ).start()
    yield process
    assert process.stop() == 0, process.output


def records(runtime: RuntimeProcess, kind: str) -> list[dict]:
    dynamodb = runtime.client("dynamodb")
    try:
        items = dynamodb.scan(TableName=runtime.name("runtime-test-records"))["Items"]
    except dynamodb.exceptions.ResourceNotFoundException:  # the app made no record yet
        return []
    return [json.loads(i["data"]["S"]) for i in items if i.get("kind", {}).get("S") == kind]


def open_socket(runtime: RuntimeProcess) -> ClientConnection:
    return connect(f"{runtime.ws_url}/?token={TOKEN}", open_timeout=10)


def receive_json(ws: ClientConnection, timeout_s: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout=timeout_s))


def connection_id(ws: ClientConnection) -> str:
    ws.send(json.dumps({"action": "echo", "text": "who am I"}))
    return str(receive_json(ws)["connection_id"])


def send_messages(runtime: RuntimeProcess, bodies: list[dict]) -> None:
    url = runtime.queue_url("readings")
    sqs = runtime.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


# --- WebSocket ---------------------------------------------------------------------------


def test_a_socket_without_a_valid_token_is_refused_with_401(runtime: RuntimeProcess) -> None:
    for query in ("", "?token=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{runtime.ws_url}/{query}", open_timeout=10)
        assert refused.value.response.status_code == 401


def test_a_socket_with_a_token_sends_and_receives_a_frame_pushed_by_its_handler(runtime: RuntimeProcess) -> None:
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "echo", "text": "hello"}))
        frame = receive_json(ws)
    assert frame["echo"] == "hello"
    assert frame["connection_id"]


def test_a_frame_pushed_by_an_sqs_consumer_reaches_the_connection(runtime: RuntimeProcess) -> None:
    with open_socket(runtime) as ws:
        me = connection_id(ws)
        send_messages(runtime, [{"push_to": me, "value": "from-queue"}])
        assert receive_json(ws) == {"from": "sqs", "value": "from-queue"}


def test_a_push_to_a_closed_connection_is_gone(runtime: RuntimeProcess) -> None:
    with open_socket(runtime) as ws, open_socket(runtime) as other:
        other_id = connection_id(other)
        ws.send(json.dumps({"action": "send_to", "connection_id": other_id}))
        assert receive_json(ws) == {"sent": other_id}
        assert receive_json(other) == {"hello": True}
        other.close()
        wait_for(lambda: any(r["connection_id"] == other_id for r in records(runtime, "disconnect")),
                 what="the $disconnect handler")
        ws.send(json.dumps({"action": "send_to", "connection_id": other_id}))
        assert receive_json(ws) == {"gone": other_id}


def test_the_management_api_answers_like_api_gateway(runtime: RuntimeProcess) -> None:
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"http://127.0.0.1:{runtime.ws_port}/api",
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
    )
    with open_socket(runtime) as ws:
        me = connection_id(ws)
        info = client.get_connection(ConnectionId=me)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        client.post_to_connection(ConnectionId=me, Data=b'{"direct": true}')
        assert receive_json(ws) == {"direct": True}
        client.delete_connection(ConnectionId=me)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=me, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="bm90LWEtY29ubmVjdGlvbg==")


def test_a_handler_that_raises_gets_api_gateways_error_frame_and_the_socket_stays_open(
    runtime: RuntimeProcess,
) -> None:
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "crash"}))
        frame = receive_json(ws)
        assert frame["message"] == "Internal server error"
        ws.send(json.dumps({"action": "echo", "text": "still here"}))
        assert receive_json(ws)["echo"] == "still here"


def test_a_malformed_frame_closes_only_that_socket(runtime: RuntimeProcess) -> None:
    raw = _raw_handshake(runtime)
    raw.sendall(b"\x8f\x80\x00\x00\x00\x00")  # reserved opcode 0xF: a protocol error
    reply = raw.recv(64)
    assert reply[0] == 0x88  # a close frame
    assert struct.unpack("!H", reply[2:4])[0] == 1002
    raw.close()
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "echo", "text": "unaffected"}))
        assert receive_json(ws)["echo"] == "unaffected"


def test_a_client_vanishing_mid_message_is_disconnected(runtime: RuntimeProcess) -> None:
    raw = _raw_handshake(runtime)
    before = len(records(runtime, "disconnect"))
    raw.sendall(b"\x81\xfe\x10\x00" + b"\x00" * 4 + b"partial")  # announces 4096 bytes, sends 7
    raw.close()
    wait_for(lambda: len(records(runtime, "disconnect")) > before, what="the $disconnect handler")
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "echo", "text": "alive"}))
        assert receive_json(ws)["echo"] == "alive"


def test_a_message_over_128_kb_closes_the_socket_with_1009(runtime: RuntimeProcess) -> None:
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "echo", "text": "x" * (129 * 1024)}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _raw_handshake(runtime: RuntimeProcess) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", runtime.ws_port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /?token={TOKEN} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1024)
    assert head.startswith(b"HTTP/1.1 101")
    return raw


# --- SQS event sources -------------------------------------------------------------------


def test_messages_sent_to_the_queue_reach_the_consumer_once(runtime: RuntimeProcess) -> None:
    values = [f"once-{i}" for i in range(23)]
    send_messages(runtime, [{"value": v} for v in values])
    wait_for(lambda: set(values) <= {r["value"] for r in records(runtime, "processed")},
             what="every message processed")
    processed = [r["value"] for r in records(runtime, "processed") if r["value"] in values]
    assert sorted(processed) == sorted(values)


def test_a_failing_record_alone_is_retried_and_dead_lettered(runtime: RuntimeProcess) -> None:
    good = [f"good-{i}" for i in range(4)]
    send_messages(runtime, [{"value": v} for v in good[:2]] + [{"fail": True, "value": "poison"}]
                  + [{"value": v} for v in good[2:]])
    dlq = runtime.queue_url("readings-dlq")
    sqs = runtime.client("sqs")

    def dead_letter() -> list[dict]:
        response = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30)
        return response.get("Messages", [])

    dead = wait_for(dead_letter, timeout_s=30, what="the poison message in the DLQ")
    assert [json.loads(m["Body"])["value"] for m in dead] == ["poison"]
    attempts = [r for r in records(runtime, "failed") if r["value"] == "poison"]
    assert len(attempts) == MAX_RECEIVE_COUNT
    processed = [r["value"] for r in records(runtime, "processed") if r["value"] in good]
    assert sorted(processed) == sorted(good)


def test_a_batch_above_ten_is_gathered_from_several_receives_within_the_window(runtime: RuntimeProcess) -> None:
    # Given a consumer with batch size 30 and a 2-second batching window, as Lambda allows
    sqs = runtime.client("sqs")
    url = runtime.queue_url("notifications")
    # When 30 messages arrive at once (three sends of ten)
    for start in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "{}"} for i in range(10)])
    # Then they reach the function together, though one receive returns ten at most
    sizes = wait_for(lambda: [r["size"] for r in records(runtime, "windowed batch")]
                     if sum(r["size"] for r in records(runtime, "windowed batch")) >= 30 else None,
                     what="every message consumed")
    assert max(sizes) > 10, sizes


def test_a_consumer_that_raises_gets_its_batch_back_and_the_runtime_goes_on(runtime: RuntimeProcess) -> None:
    send_messages(runtime, [{"raise": True, "value": "boom"}])
    dlq = runtime.queue_url("readings-dlq")
    sqs = runtime.client("sqs")

    def boom_in_dlq() -> bool:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        return any(json.loads(m["Body"]).get("value") == "boom" for m in messages)

    wait_for(boom_in_dlq, timeout_s=30, what="the raising batch in the DLQ")
    send_messages(runtime, [{"value": "after-boom"}])
    wait_for(lambda: any(r["value"] == "after-boom" for r in records(runtime, "processed")),
             what="a later message processed")
    assert "the test asked this batch to fail" in runtime.output


# --- schedules, REST, logs ---------------------------------------------------------------


def test_a_schedule_fires(runtime: RuntimeProcess) -> None:
    # rate(1 minute) at 60x: about once a second.
    wait_for(lambda: len(records(runtime, "heartbeat")) >= 2, timeout_s=20, what="two heartbeats")


def test_rest_routes_answer_under_api_and_unknown_ones_get_the_error_body(runtime: RuntimeProcess) -> None:
    response = requests.get(f"{runtime.rest_url}/ping", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"pong": True, "stage": "api"}
    missing = requests.get(f"{runtime.rest_url}/no/such/route", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    frontend = requests.get(f"http://127.0.0.1:{runtime.rest_port}/", timeout=10)
    assert frontend.status_code == 200
    # API Gateway URL-decodes path parameters before the function sees them.
    decoded = requests.get(f"{runtime.rest_url}/echo/m1%3A2026-01-01T00%3A00%3A00Z", timeout=10)
    assert decoded.json() == {"value": "m1:2026-01-01T00:00:00Z"}


def test_logs_are_json_lines_with_a_request_or_message_id(runtime: RuntimeProcess) -> None:
    with open_socket(runtime) as ws:
        ws.send(json.dumps({"action": "crash"}))
        receive_json(ws)
    parsed = []
    for line in runtime.lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    errors = [p for p in parsed if p.get("errorType") == "RuntimeError"]
    assert errors, runtime.output
    consumed = [p for p in parsed if p.get("message") == "batch consumed"]
    assert consumed and all(p.get("correlation_id") and p.get("route") == "sqs" for p in consumed)
    handled = [p for p in parsed if p.get("message") == "frame handled"]
    assert handled and all(p.get("connection_id") and p.get("request_id") for p in handled)


# --- lifecycle ---------------------------------------------------------------------------


def test_data_survives_a_restart_and_ctrl_c_frees_every_port(tmp_path: Path) -> None:
    first = RuntimeProcess(tmp_path, app_dir=APP_DIR, extra_args=["--save-interval", "0"]).start()
    table = first.name("alerts")
    first.client("dynamodb").put_item(TableName=table, Item={"id": {"S": "kept"}, "kind": {"S": "kept"}})
    first.client("sqs").send_message(QueueUrl=first.queue_url("readings-dlq"), MessageBody='{"kept": 1}')
    assert first.stop() == 0, first.output
    assert "Stopped." in first.output
    for port in (first.rest_port, first.ws_port, first.endpoint_port):
        assert port_is_free(port), f"port {port} still taken after Ctrl-C"
    assert endpoint_pids(first.endpoint_port) == []
    # The saved state holds users' hashes and chats: the owner alone may read it
    saved = [p for p in (tmp_path / "endpoint").rglob("*") if p.is_file()] + [tmp_path / "endpoint.log"]
    assert saved and all(p.stat().st_mode & 0o077 == 0 for p in saved), [(p, oct(p.stat().st_mode)) for p in saved]
    assert tmp_path.joinpath("endpoint").stat().st_mode & 0o077 == 0

    second = RuntimeProcess(
        tmp_path, app_dir=APP_DIR, stage=first.stage,
        ports=(first.rest_port, first.ws_port, first.endpoint_port),
    ).start()
    try:
        item = second.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "kept"}})
        assert item.get("Item", {}).get("kind") == {"S": "kept"}
        kept = second.client("sqs").receive_message(QueueUrl=second.queue_url("readings-dlq"), WaitTimeSeconds=1)
        assert [m["Body"] for m in kept.get("Messages", [])] == ['{"kept": 1}']
    finally:
        assert second.stop() == 0, second.output


def test_after_kill_9_of_the_endpoint_the_last_saved_state_comes_back(tmp_path: Path) -> None:
    # Given a runtime whose endpoint saves 1 s after a change, and an item written well before
    first = RuntimeProcess(tmp_path, app_dir=APP_DIR, extra_args=["--save-interval", "1"]).start()
    table = first.name("alerts")
    first.client("dynamodb").put_item(TableName=table, Item={"id": {"S": "saved"}, "kind": {"S": "saved"}})
    wait_for(lambda: (tmp_path / "endpoint" / "dynamodb.json").exists()
             and b"saved" in (tmp_path / "endpoint" / "dynamodb.json").read_bytes(), what="the periodic save")
    # When the endpoint is killed with no chance to save, and the runtime is then stopped and started again
    [pid] = endpoint_pids(first.endpoint_port)
    os.kill(pid, 9)
    first.stop()
    second = RuntimeProcess(tmp_path, app_dir=APP_DIR, stage=first.stage,
                            ports=(first.rest_port, first.ws_port, first.endpoint_port)).start()
    try:
        # Then what was saved is there
        item = second.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "saved"}})
        assert item.get("Item", {}).get("kind") == {"S": "saved"}
    finally:
        assert second.stop() == 0, second.output


def test_a_save_cut_short_is_completed_when_committed_and_dropped_when_not(tmp_path: Path) -> None:
    # Given a stage whose state holds an item, saved on a clean stop
    first = RuntimeProcess(tmp_path, app_dir=APP_DIR).start()
    table = first.name("alerts")
    first.client("dynamodb").put_item(TableName=table, Item={"id": {"S": "kept"}, "kind": {"S": "kept"}})
    assert first.stop() == 0, first.output
    state = tmp_path / "endpoint"
    ports = (first.rest_port, first.ws_port, first.endpoint_port)

    def restarted_sees_the_item() -> bool:
        runtime = RuntimeProcess(tmp_path, app_dir=APP_DIR, stage=first.stage, ports=ports).start()
        try:
            got = runtime.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "kept"}})
            return got.get("Item", {}).get("kind") == {"S": "kept"}
        finally:
            assert runtime.stop() == 0, runtime.output

    # When a save was killed after its commit mark but before its files were moved into place
    (state / ".saving").mkdir()
    (state / "dynamodb.json").rename(state / ".saving" / "dynamodb.json")
    (state / ".saving.committed").write_text(json.dumps(["dynamodb.json"]))
    # Then the next start completes it
    assert restarted_sees_the_item()
    assert not (state / ".saving").exists() and not (state / ".saving.committed").exists()
    # And when a save was killed before its commit mark, its half-written files are dropped
    (state / ".saving").mkdir()
    (state / ".saving" / "dynamodb.json").write_text('{"half')
    assert restarted_sees_the_item()
    assert not (state / ".saving").exists()


def test_tables_and_messages_saved_by_an_earlier_version_are_imported_once(tmp_path: Path) -> None:
    stage = "legacy1"
    item = {"id": {"S": "old"}, "kind": {"S": "old"}}
    (tmp_path / "snapshot.json").write_text(json.dumps({
        "version": 1, "tables": {f"ems-{stage}-alerts": [item]},
        "queues": {f"ems-{stage}-readings-dlq": [{"body": '{"old": 1}', "attributes": {}}]}}))
    runtime = RuntimeProcess(tmp_path, app_dir=APP_DIR, stage=stage).start()
    try:
        got = runtime.client("dynamodb").get_item(TableName=runtime.name("alerts"), Key={"id": {"S": "old"}})
        assert got.get("Item") == item
        kept = runtime.client("sqs").receive_message(QueueUrl=runtime.queue_url("readings-dlq"), WaitTimeSeconds=1)
        assert [m["Body"] for m in kept.get("Messages", [])] == ['{"old": 1}']
        assert not (tmp_path / "snapshot.json").exists() and (tmp_path / "snapshot.json.imported").exists()
    finally:
        assert runtime.stop() == 0, runtime.output


def test_the_endpoint_serves_only_the_stages_own_signed_requests(runtime: RuntimeProcess) -> None:
    # A client with other keys, and a browser page (Origin), are refused; the stage's own client is served
    stranger = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
    with pytest.raises(stranger.exceptions.ClientError, match="access key"):
        stranger.list_queues()
    page = requests.post(runtime.endpoint_url, data="Action=ListQueues", timeout=10,
                         headers={"Origin": "https://example.org", "Content-Type": "application/x-www-form-urlencoded"})
    assert page.status_code == 403 and "access-control-allow-origin" not in {k.lower() for k in page.headers}
    preflight = requests.options(runtime.endpoint_url, timeout=10, headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    keys = (runtime.data_dir / "aws-credentials")
    assert keys.stat().st_mode & 0o777 == 0o600
    served = runtime.client("sqs").list_queues(QueueNamePrefix=runtime.name("readings"))
    assert served["QueueUrls"]
    # What it answers the stage's clients carries no CORS headers (no browser is served) and one date
    for answer in (served, runtime.client("dynamodb").list_tables()):
        headers = answer["ResponseMetadata"]["HTTPHeaders"]
        assert not [name for name in headers if name.startswith("access-control-")], headers
        assert headers["date"].count("GMT") == 1, headers["date"]


@pytest.mark.parametrize("length", [b"-5", b"-1", b"nine"])
def test_a_negative_or_malformed_content_length_is_refused_and_nothing_past_it_is_read(
        runtime: RuntimeProcess, length: bytes) -> None:
    with socket.create_connection(("127.0.0.1", runtime.rest_port), timeout=10) as raw:
        raw.sendall(b"POST /api/anything HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n" + b"x" * 100)
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"bad_request"' in answer


def test_a_second_runtime_on_the_same_ports_fails_with_a_clear_message(runtime: RuntimeProcess, tmp_path: Path) -> None:
    clash = RuntimeProcess(tmp_path, app_dir=APP_DIR,
                           ports=(runtime.rest_port, runtime.ws_port, runtime.endpoint_port))
    result = subprocess.run(clash.command(), check=False, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("condition", "values", "expected"), [
    ("device_id = :d AND hour_start BETWEEN :a AND :b", {":a": "h03", ":b": "h06"}, ["h03", "h04", "h05", "h06"]),
    ("(#p = :d AND #s BETWEEN :a AND :b)", {":a": "h10", ":b": "h99"}, ["h10", "h11"]),
    ("device_id = :d AND hour_start < :a", {":a": "h02"}, ["h00", "h01"]),
    ("device_id = :d AND hour_start <= :a", {":a": "h01"}, ["h00", "h01"]),
    ("device_id = :d AND hour_start > :a", {":a": "h10"}, ["h11"]),
    ("device_id = :d AND hour_start >= :a", {":a": "h10"}, ["h10", "h11"]),
    ("device_id = :d AND hour_start = :a", {":a": "h07"}, ["h07"]),
    ("device_id = :d AND begins_with(hour_start, :a)", {":a": "h0"}, [f"h0{i}" for i in range(10)]),
    ("device_id = :d", {}, [f"h{i:02d}" for i in range(12)]),
])
def test_a_querys_sort_key_range_gives_exactly_the_items_in_range_in_order_and_by_page(
        runtime: RuntimeProcess, condition: str, values: dict[str, str], expected: list[str]) -> None:
    # Given a partition of 12 hours beside another device's
    dynamodb = runtime.client("dynamodb")
    table = runtime.name("range-query")
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "device_id", "AttributeType": "S"},
                                                    {"AttributeName": "hour_start", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "device_id", "KeyType": "HASH"},
                                         {"AttributeName": "hour_start", "KeyType": "RANGE"}])
        for device in ("a", "b"):
            for i in range(12):
                dynamodb.put_item(TableName=table, Item={"device_id": {"S": device}, "hour_start": {"S": f"h{i:02d}"}})
    names = {"#p": "device_id", "#s": "hour_start"} if "#" in condition else {}
    request: dict = {"TableName": table, "KeyConditionExpression": condition,
                     "ExpressionAttributeValues": {":d": {"S": "a"}, **{k: {"S": v} for k, v in values.items()}},
                     **({"ExpressionAttributeNames": names} if names else {})}
    # When it is queried forwards, backwards, and two items to a page
    forward = [i["hour_start"]["S"] for i in dynamodb.query(**request)["Items"]]
    backward = [i["hour_start"]["S"] for i in dynamodb.query(**request, ScanIndexForward=False)["Items"]]
    paged: list[str] = []
    page = dynamodb.query(**request, Limit=2)
    while True:
        paged += [i["hour_start"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        page = dynamodb.query(**request, Limit=2, ExclusiveStartKey=page["LastEvaluatedKey"])
    # Then each gives exactly the partition's items in range, in DynamoDB's order
    assert forward == expected and backward == expected[::-1] and paged == expected


@pytest.mark.parametrize(("condition", "values", "expected"), [
    ("listing = :l", {}, [f"n{i:02d}" for i in range(12) if i != 5]),
    ("listing = :l AND begins_with(name_key, :a)", {":a": "n0"}, [f"n0{i}" for i in range(10) if i != 5]),
    ("listing = :l AND name_key BETWEEN :a AND :b", {":a": "n03", ":b": "n07"}, ["n03", "n04", "n06", "n07"]),
    ("listing = :l AND name_key > :a", {":a": "n09"}, ["n10", "n11"]),
    ("listing = :l AND name_key >= :a", {":a": "n09"}, ["n09", "n10", "n11"]),
    ("listing = :l AND name_key < :a", {":a": "n03"}, ["n00", "n01", "n02"]),
    ("listing = :l AND name_key <= :a", {":a": "n06"}, ["n00", "n01", "n02", "n03", "n04", "n06"]),
    ("listing = :l AND name_key = :a", {":a": "n07"}, ["n07"]),
    ("listing = :l AND name_key = :a", {":a": "n05"}, []),
    ("listing = :l AND begins_with(name_key, :a)", {":a": "n1"}, ["n10", "n11"]),
])
@pytest.mark.parametrize("filtered", [False, True])
def test_an_index_query_gives_exactly_the_indexed_items_in_range_in_order_and_by_page(
        runtime: RuntimeProcess, condition: str, values: dict[str, str], expected: list[str], filtered: bool) -> None:
    # Given a hash-key table whose sparse index holds 11 of its items (one is not listed), beside another partition
    dynamodb = runtime.client("dynamodb")
    table = runtime.name("index-query")
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("id", "listing", "name_key")],
            GlobalSecondaryIndexes=[{"IndexName": "by_name", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
                {"AttributeName": "listing", "KeyType": "HASH"}, {"AttributeName": "name_key", "KeyType": "RANGE"}]}])
        for i in range(12):
            listed = {"listing": {"S": "all"}} if i != 5 else {}
            dynamodb.put_item(TableName=table, Item={"id": {"S": f"id-{11 - i}"}, "name_key": {"S": f"n{i:02d}"},
                                                     "odd": {"BOOL": i % 2 == 1}, **listed})
            dynamodb.put_item(TableName=table, Item={"id": {"S": f"other-{i}"}, "listing": {"S": "other"},
                                                     "name_key": {"S": f"n{i:02d}"}, "odd": {"BOOL": False}})
    request: dict = {"TableName": table, "IndexName": "by_name", "KeyConditionExpression": condition,
                     "ExpressionAttributeValues": {":l": {"S": "all"}, **{k: {"S": v} for k, v in values.items()}}}
    if filtered:
        request["FilterExpression"] = "odd = :odd"
        request["ExpressionAttributeValues"][":odd"] = {"BOOL": True}
        expected = [key for key in expected if int(key[1:]) % 2 == 1]
    # When it is queried forwards, backwards, and three items evaluated to a page
    forward = [i["name_key"]["S"] for i in dynamodb.query(**request)["Items"]]
    backward = [i["name_key"]["S"] for i in dynamodb.query(**request, ScanIndexForward=False)["Items"]]
    paged: list[str] = []
    page = dynamodb.query(**request, Limit=3)
    for _ in range(20):
        assert len(page["Items"]) <= 3
        paged += [i["name_key"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        page = dynamodb.query(**request, Limit=3, ExclusiveStartKey=page["LastEvaluatedKey"])
    paged_back: list[str] = []
    page = dynamodb.query(**request, Limit=2, ScanIndexForward=False)
    for _ in range(20):
        paged_back += [i["name_key"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        page = dynamodb.query(**request, Limit=2, ScanIndexForward=False, ExclusiveStartKey=page["LastEvaluatedKey"])
    counted = dynamodb.query(**request, Select="COUNT")["Count"]
    # Then each gives exactly the index partition's items in range, in DynamoDB's order
    assert forward == expected and backward == expected[::-1] and paged == expected and counted == len(expected)
    assert paged_back == expected[::-1]


def test_receives_behind_delayed_messages_keep_sqs_redrive_exactly(runtime: RuntimeProcess) -> None:
    # Given a queue with maxReceiveCount 2 whose first 30 messages are delayed, then 3 visible ones
    sqs = runtime.client("sqs")
    dlq = sqs.create_queue(QueueName=runtime.name("redrive-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=runtime.name("redrive"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
    for start in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": f"later-{start + i}", "DelaySeconds": 900} for i in range(10)])
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"now-{i}"} for i in range(3)])
    # When they are received again and again, never deleted
    deliveries: dict[str, list[str]] = {}
    for _ in range(4):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                           WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", []):
            deliveries.setdefault(message["Body"], []).append(message["Attributes"]["ApproximateReceiveCount"])
    # Then each visible one was delivered exactly twice, counted 1 then 2, and is in the dead-letter queue;
    # the delayed ones were never delivered
    assert deliveries == {f"now-{i}": ["1", "2"] for i in range(3)}
    moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(m["Body"] for m in moved) == ["now-0", "now-1", "now-2"]
    delayed = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "30"


def test_the_rest_stage_throttles_a_flood_with_the_contracts_429(tmp_path: Path) -> None:
    # Given a runtime whose REST stage takes 5 requests at once and 1 a second, as a deployed stage's
    # throttling would
    runtime = RuntimeProcess(tmp_path, app_dir=APP_DIR,
                             extra_args=["--rest-rate-limit", "1", "--rest-burst-limit", "5"]).start()
    try:
        # When 12 requests arrive at once
        with requests.Session() as session:
            answers = [session.get(f"{runtime.rest_url}/ping", timeout=10) for _ in range(12)]
    finally:
        assert runtime.stop() == 0, runtime.output
    # Then the first five pass and the flood gets 429s with the contract's body and Retry-After
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5 and statuses.count(429) >= 6, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json() == {"error": {"code": "too_many_requests", "message": "Too Many Requests"}}
    assert refused.headers["Retry-After"] == "1"
