"""Smoke tests of the deployed stack, through its deployed URLs and queues only.

Every request goes to the REST or WebSocket API the stack created (the emulator's execute-api data
plane) or to the stack's readings queue, and every answer comes from the packaged Lambda code running
as its execution role with the stage's hand-written policy.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from infra.rehearse import STAGE, Deployment
from tests.accounts import Account
from tests.harness import wait_for
from tests.sockets import Socket

DEADLINE_S = 60.0
PASSWORD = "correct horse 1"


def call(deployment: Deployment, method: str, path: str, user: Account | None = None, **kwargs: Any
         ) -> requests.Response:
    headers = user.headers if user else {}
    return requests.request(method, f"{deployment.rest_url}{path}", headers=headers, timeout=60, **kwargs)


def sign_in(deployment: Deployment, username: str, password: str) -> Account:
    response = call(deployment, "POST", "/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["user"]["username"] == username, body
    return Account(body["user"]["id"], username, password, body["access_token"])


@pytest.fixture(scope="module")
def admin(deployment: Deployment) -> Account:
    """The admin the rehearsal made with `python -m chalicelib.identity create-admin`."""
    return sign_in(deployment, deployment.admin_username, deployment.admin_password)


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Account:
    """A client that registered itself through the deployed API."""
    username = f"client_{uuid.uuid4().hex[:10]}"
    response = call(deployment, "POST", "/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert response.json()["user"]["role"] == "client"
    return sign_in(deployment, username, PASSWORD)


def make_device(deployment: Deployment, admin: Account, owner: Account, limit: float) -> str:
    """A device created by the admin and assigned to `owner`, once the consumers' replica knows it."""
    device_id = f"m-{uuid.uuid4().hex[:10]}"
    created = call(deployment, "POST", "/devices", admin, json={
        "id": device_id, "name": f"Meter {device_id}", "max_hourly_kwh": limit, "timezone": "UTC"})
    assert created.status_code == 201, created.text
    assigned = call(deployment, "PUT", f"/devices/{device_id}/owners/{owner.id}", admin)
    assert assigned.status_code == 200, assigned.text
    assert owner.id in assigned.json()["owner_ids"]
    meters = deployment.endpoint.client("dynamodb")
    # The devices topic fans the change out to the monitoring-sync queue; the deployed consumer keeps the replica.
    wait_for(lambda: owner.id in json.dumps(meters.get_item(
        TableName=f"ems-{STAGE}-meters", Key={"device_id": {"S": device_id}}, ConsistentRead=True).get("Item", {})),
        timeout_s=DEADLINE_S, interval_s=0.5, what="the device and its owner in monitoring's replica")
    return device_id


def send_readings(deployment: Deployment, bodies: list[dict[str, Any]]) -> None:
    """Each body as one message on the deployed readings queue (the stack's output names it)."""
    sqs = deployment.endpoint.client("sqs")
    url = deployment.outputs["ReadingsQueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def drained(deployment: Deployment, output: str) -> bool:
    return queue_empty(deployment, deployment.outputs[output])


def queue_empty(deployment: Deployment, url: str) -> bool:
    """No message waiting and none being handled."""
    attributes = deployment.endpoint.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


@pytest.fixture
def socket_of(deployment: Deployment) -> Iterator[Any]:
    """Opens a socket on the deployed WebSocket API for a user (`?token=`); all closed after the test."""
    with ExitStack() as stack:

        def open_for(user: Account) -> Socket:
            ws = stack.enter_context(connect(f"{deployment.websocket_url}?token={user.token}",
                                             open_timeout=DEADLINE_S, proxy=None, compression=None))
            return Socket(ws, user.username)

        yield open_for


def test_health_register_and_login(deployment: Deployment, client: Account, admin: Account) -> None:
    health = call(deployment, "GET", "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "stage": STAGE}, health.text
    me = call(deployment, "GET", "/auth/me", client)
    assert me.status_code == 200 and me.json()["username"] == client.username, me.text
    wrong = call(deployment, "POST", "/auth/login", json={"username": client.username, "password": "not it 123"})
    assert wrong.status_code == 401, wrong.text
    details = call(deployment, "GET", "/health/details", admin)
    assert details.status_code == 200, details.text
    assert call(deployment, "GET", "/health/details", client).status_code == 403


def test_device_creation_and_assignment(deployment: Deployment, admin: Account, client: Account) -> None:
    device_id = make_device(deployment, admin, client, limit=5.0)
    mine = call(deployment, "GET", "/devices", client)
    assert mine.status_code == 200, mine.text
    assert [d["id"] for d in mine.json()["items"]] == [device_id]
    stranger = call(deployment, "POST", "/auth/register", json={"username": f"other_{uuid.uuid4().hex[:8]}",
                                                                "password": PASSWORD})
    assert stranger.status_code == 201, stranger.text
    other = sign_in(deployment, stranger.json()["user"]["username"], PASSWORD)
    assert call(deployment, "GET", f"/devices/{device_id}", other).status_code == 404


@pytest.fixture
def silent_check_paused(deployment: Deployment) -> Iterator[None]:
    """The deployed silent-check schedule disabled, and its queue empty, for the test: an old reading's
    deadline is due at once, and a check would otherwise take it (and the test's view of it) first."""
    events, sqs = deployment.endpoint.client("events"), deployment.endpoint.client("sqs")
    rules = [rule["Name"] for rule in events.list_rules()["Rules"]
             if any("-CheckSilentMeters-" in target["Arn"]  # the function of app.check_silent_meters
                    for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"])]
    assert len(rules) == 1, rules
    events.disable_rule(Name=rules[0])
    checks = sqs.get_queue_url(QueueName=f"ems-{STAGE}-silent-checks")["QueueUrl"]
    try:
        wait_for(lambda: queue_empty(deployment, checks), timeout_s=DEADLINE_S, interval_s=0.5,
                 what="the silent checks under way to finish")
        yield
    finally:
        events.enable_rule(Name=rules[0])


@pytest.mark.usefixtures("silent_check_paused")
def test_readings_on_the_queue_are_counted_exactly(deployment: Deployment, admin: Account, client: Account) -> None:
    device_id = make_device(deployment, admin, client, limit=100.0)
    hour = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    readings = [{"timestamp": (hour + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "device_id": device_id, "measurement_value": value}
                for i, value in enumerate([0.1, 0.2, 0.3, 0.25, 0.05, 0.4])]
    expected = sum(Decimal(str(r["measurement_value"])) for r in readings)  # 1.3
    # A batch message, the same batch again, and single readings that repeat two of it: each counts once.
    send_readings(deployment, [{"readings": readings}, {"readings": readings}, readings[0], readings[3]])

    def day() -> dict[str, Any]:
        response = call(deployment, "GET", f"/devices/{device_id}/consumption?date={hour.date().isoformat()}",
                        client)
        assert response.status_code == 200, response.text
        return dict(response.json())

    wait_for(lambda: drained(deployment, "ReadingsQueueUrl") and Decimal(str(day()["total_kwh"])) == expected,
             timeout_s=DEADLINE_S, interval_s=0.5, what=f"a total of {expected} kWh")
    counted = next(h for h in day()["hours"] if h["start"].startswith(hour.strftime("%Y-%m-%dT%H")))
    assert Decimal(str(counted["kwh"])) == expected and counted["readings"] == len(readings), counted
    assert drained(deployment, "ReadingsDeadLetterQueueUrl")

    # The next hour's first reading takes the device's silence deadline over from this hour (the
    # consumer's role must allow the PartiQL batch that drops the old one).
    following = hour + dt.timedelta(hours=1)
    send_readings(deployment, [{"timestamp": following.strftime("%Y-%m-%dT%H:%M:%SZ"), "device_id": device_id,
                                "measurement_value": 0.1}])
    hours = deployment.endpoint.client("dynamodb")

    def deadlines() -> list[str]:
        items = hours.query(TableName=f"ems-{STAGE}-hourly-totals", ConsistentRead=True,
                            KeyConditionExpression="device_id = :d", ExpressionAttributeValues={":d": {"S": device_id}})
        return [i["hour_start"]["S"] for i in items["Items"] if "silent_at" in i]

    wait_for(lambda: deadlines() == [following.strftime("%Y-%m-%dT%H:%M:%SZ")], timeout_s=DEADLINE_S,
             interval_s=0.5, what="the silence deadline on the next hour only")


def test_over_consumption_alert_reaches_the_owners_socket(deployment: Deployment, admin: Account, client: Account,
                                                          socket_of: Any) -> None:
    device_id = make_device(deployment, admin, client, limit=1.0)
    socket = socket_of(client)
    socket.request({"action": "ping"}, lambda f: f.get("type") == "pong", "a pong")
    hour = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(minute=0, second=0, microsecond=0)
    send_readings(deployment, [{"readings": [
        {"timestamp": (hour + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "device_id": device_id,
         "measurement_value": 0.6} for i in range(2)]}])
    alert_id = f"{device_id}:{hour.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    # (The schedule's silent check may raise a silent-meter alert for the device too: a frame of another id.)
    [frame] = socket.expect(lambda f: f.get("type") == "alert" and f["alert"]["id"] == alert_id,
                            "the over-consumption alert", timeout_s=DEADLINE_S)
    assert Decimal(str(frame["alert"]["total_kwh"])) == Decimal("1.2"), frame
    inbox = call(deployment, "GET", "/alerts", client)
    assert inbox.status_code == 200 and alert_id in [a["id"] for a in inbox.json()["items"]], inbox.text


def test_chat_rule_answer(deployment: Deployment, client: Account, socket_of: Any) -> None:
    socket = socket_of(client)
    socket.send({"action": "chat.send", "text": "hello"})
    [answer] = socket.expect(lambda f: f.get("type") == "chat.message" and f["message"]["sender_kind"] == "rule",
                             "the FAQ rule's answer", timeout_s=DEADLINE_S)
    assert answer["message"]["text"].startswith("Hello!"), answer
    conversations = call(deployment, "GET", "/chat/conversations", client)
    assert conversations.status_code == 200 and conversations.json()["items"], conversations.text
