"""Real time over a real WebSocket: the handshake, client frames, alerts and live readings to every
socket of the right users, alert inboxes, redelivered notifications, sockets closed by the server,
and gone connections pruned.

Given the product app under the local runtime (`ems`), clients connect to its WebSocket gateway
with `websockets`' sync client, readings and notifications go through its real SQS queues, and
what each socket received is read back with a timeout. Tests poll up to deadlines; a frame that
must not arrive is checked after every expected frame has arrived and a ping has come back.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from tests.accounts import Account, api, new_admin, new_client
from tests.harness import RuntimeProcess, wait_for
from tests.sockets import (
    DEADLINE_S,
    Frame,
    alerts_of,
    hour_key,
    hour_readings,
    is_alert,
    make_device,
    mentions,
    queue_drained,
    refused_status,
    send_readings,
    sockets,
)

# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_admin(ems: RuntimeProcess) -> Account:
    return new_admin(ems)


# --- the handshake ------------------------------------------------------------------------


def _token(secret: str, account: Account, **overrides: Any) -> str:
    now = time.time()
    claims = {"sub": account.id, "username": account.username, "role": "client", "iat": round(now, 3),
              "exp": int(now) + 600, "iss": "ems", "aud": "ems-api", **overrides}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_connection_without_a_valid_token_is_refused_with_401_at_the_handshake(ems: RuntimeProcess) -> None:
    # Given a client and the runtime's signing secret (to forge an expired but well-signed token)
    client = new_client(ems)
    secret = (ems.data_dir / "jwt-secret").read_text().strip()
    expired = _token(secret, client, iat=time.time() - 7200, exp=int(time.time()) - 3600)
    tampered = client.token[:-4] + ("AAAA" if not client.token.endswith("AAAA") else "BBBB")
    # When each bad token (or none) is offered, Then the handshake is refused with 401
    for query in ("", "?token=", "?token=garbage", "?token=a.b.c", f"?token={expired}", f"?token={tampered}",
                  f"?token={_token('another-secret-' * 4, client)}"):
        assert refused_status(ems, query) == 401, query
    # And the control: a current token signed with the secret is accepted
    assert refused_status(ems, f"?token={_token(secret, client)}") is None


def test_a_valid_token_connects_and_ping_gets_pong(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    with sockets(ems, client) as (socket,):
        assert socket.request({"action": "ping"}, lambda f: f.get("type") == "pong", "pong") == {"type": "pong"}


# --- bad frames ---------------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "action", "code"), [
    ({"action": "dance"}, "dance", "validation_error"),
    ("{not json", None, "invalid_json"),
    ("[1, 2]", None, "validation_error"),
    ({"text": "no action"}, None, "validation_error"),
    (json.dumps({"action": "ping", "padding": "x" * (33 * 1024)}), None, "payload_too_large"),
    # 11 000 characters, but 33 KB in UTF-8: the limit is on bytes
    (json.dumps({"action": "ping", "padding": "€" * 11_000}, ensure_ascii=False), None, "payload_too_large"),
    ({"action": "chat.send"}, "chat.send", "validation_error"),
    ({"action": "chat.send", "text": "hi", "extra": 1}, "chat.send", "validation_error"),
    ("[" * 20_000, None, "invalid_json"),
], ids=["unknown action", "malformed JSON", "not an object", "no action", "over 32 KB", "over 32 KB in UTF-8",
        "missing field", "unknown field", "nested 20,000 deep"])
def test_a_bad_frame_gets_an_error_frame_and_the_socket_stays_usable(
    ems: RuntimeProcess, frame: Frame | str, action: str | None, code: str
) -> None:
    client = new_client(ems)
    with sockets(ems, client) as (socket,):
        error = socket.request(frame, lambda f: f.get("type") == "error", "an error frame")
        assert error["action"] == action
        assert error["error"]["code"] == code and error["error"]["message"]
        # Then the same socket still works
        socket.request({"action": "ping"}, lambda f: f.get("type") == "pong", "pong")


def test_every_connection_of_a_user_gets_every_frame(ems: RuntimeProcess, admin: Account) -> None:
    # Given a client with three sockets and its device
    client = new_client(ems)
    device_id = make_device(ems, admin, [client])
    with sockets(ems, client, client, client) as opened:
        # When a live reading update is announced
        send_notification(ems, {"type": "readings.updated",
                                "readings": [{"device_id": device_id, "hour_start": "2026-06-15T10:00:00Z",
                                              "kwh": 0.25}]})
        # Then every socket gets it
        for socket in opened:
            frame = socket.expect(lambda f: f.get("type") == "reading" and f.get("device_id") == device_id,
                                  "the reading frame")[0]
            assert frame == {"type": "reading", "device_id": device_id, "hour_start": "2026-06-15T10:00:00Z",
                             "kwh": 0.25}


# --- alerts -------------------------------------------------------------------------------


def send_notification(runtime: RuntimeProcess, message: Frame) -> None:
    runtime.client("sqs").send_message(QueueUrl=runtime.queue_url("notifications"), MessageBody=json.dumps(message))


def test_an_alert_reaches_every_socket_of_every_owner_and_every_admin_and_no_other_client(
    ems: RuntimeProcess, admin: Account, second_admin: Account
) -> None:
    # Given two owners (one with two sockets), two admins and a stranger, all connected
    owner_a, owner_b, stranger = new_client(ems, "owner"), new_client(ems, "owner"), new_client(ems, "stranger")
    device_id = make_device(ems, admin, [owner_a, owner_b], limit=1.0)
    hour = dt.datetime(2026, 6, 15, 18, tzinfo=dt.UTC)
    alert_id = f"{device_id}:{hour_key(hour)}"
    with sockets(ems, owner_a, owner_a, owner_b, admin, second_admin, stranger) as opened:
        a1, a2, b1, admin_1, admin_2, outsider = opened
        # When an hour's readings (6 readings of 0.3 kWh) cross the 1 kWh limit
        send_readings(ems, hour_readings(device_id, hour, 0.3))
        # Then each socket of each owner and of each admin gets the alert, once
        for socket in (a1, a2, b1, admin_1, admin_2):
            frame = socket.expect(is_alert(alert_id), "the alert")[0]
            assert frame["alert"] | {"created_at": "-", "total_kwh": "-"} == {
                "id": alert_id, "kind": "over_consumption", "device_id": device_id, "device_name": f"Meter {device_id}",
                "hour_start": hour_key(hour), "total_kwh": "-", "max_hourly_kwh": 1.0, "created_at": "-",
                "acknowledged_at": None}
            assert frame["alert"]["total_kwh"] > 1.0
        # And each owner's socket gets the hour's live total for the chart, up to the full 1.8 kWh
        for socket in (a1, a2, b1):
            socket.expect(lambda f: f.get("type") == "reading" and f.get("device_id") == device_id
                          and f.get("hour_start") == hour_key(hour) and f.get("kwh") == pytest.approx(1.8),
                          "the hour's full total")
        for socket in opened:
            socket.settle()
        assert all(len(s.matching(is_alert(alert_id))) == 1 for s in (a1, a2, b1, admin_1, admin_2))
        # And the stranger got nothing about that device
        assert outsider.matching(mentions(device_id)) == []


def test_an_offline_owner_finds_the_alert_in_the_inbox_and_acknowledges_it_for_itself(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given two owners, both offline, and two hours of their device over the limit
    owner, co_owner, stranger = new_client(ems, "owner"), new_client(ems, "owner"), new_client(ems, "stranger")
    device_id = make_device(ems, admin, [owner, co_owner], limit=1.0)
    hours = [dt.datetime(2026, 6, 16, h, tzinfo=dt.UTC) for h in (7, 8)]
    send_readings(ems, [r for h in hours for r in hour_readings(device_id, h, 0.5)])
    ids = {f"{device_id}:{hour_key(h)}" for h in hours}
    # When the owner opens the inbox, Then both alerts are there, unacknowledged

    def both_listed() -> list[dict[str, Any]] | None:
        found = [a for a in alerts_of(ems, owner) if a["id"] in ids]
        return found if len(found) == 2 else None

    mine = wait_for(both_listed, timeout_s=DEADLINE_S, what="both alerts in the owner's inbox")
    assert all(a["acknowledged_at"] is None and a["device_id"] == device_id for a in mine)
    # When the owner acknowledges the one listed first
    first = mine[0]["id"]
    acked = api(ems, "POST", f"/alerts/{first}/ack", owner)
    assert acked.status_code == 200, acked.text
    stamp = acked.json()["acknowledged_at"]
    assert acked.json()["id"] == first and stamp
    # Then doing it again changes nothing
    again = api(ems, "POST", f"/alerts/{first}/ack", owner)
    assert again.status_code == 200 and again.json()["acknowledged_at"] == stamp
    # And the unacknowledged one now comes first, the acknowledged one after it
    after = [a for a in alerts_of(ems, owner) if a["id"] in ids]
    assert [a["id"] for a in after] == [(ids - {first}).pop(), first]
    assert after[0]["acknowledged_at"] is None and after[1]["acknowledged_at"] == stamp
    assert [a["id"] for a in alerts_of(ems, owner, "?unacknowledged=true") if a["id"] in ids] == [after[0]["id"]]
    # And the co-owner's and the admins' copies are still unacknowledged
    assert all(a["acknowledged_at"] is None for a in alerts_of(ems, co_owner) if a["id"] in ids)
    assert {a["id"] for a in alerts_of(ems, co_owner)} >= ids
    assert all(a["acknowledged_at"] is None for a in alerts_of(ems, admin, "?limit=500") if a["id"] in ids)
    # And a client who does not own the device cannot see or acknowledge it
    assert not any(a["id"] in ids for a in alerts_of(ems, stranger))
    refused = api(ems, "POST", f"/alerts/{first}/ack", stranger)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert api(ems, "POST", f"/alerts/{device_id}:2000-01-01T00:00:00Z/ack", owner).status_code == 404


def test_a_redelivered_alert_event_makes_no_duplicate_inbox_item_or_frame(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given an owner with an open socket, and an admin's socket
    owner = new_client(ems, "owner")
    device_id = make_device(ems, admin, [owner], limit=1.0)
    alert_id = f"{device_id}:2026-06-17T05:00:00Z"
    message = {"type": "alert.raised", "alert": {
        "id": alert_id, "kind": "over_consumption", "device_id": device_id, "device_name": f"Meter {device_id}",
        "hour_start": "2026-06-17T05:00:00Z", "total_kwh": 1.5, "max_hourly_kwh": 1.0,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "acknowledged_at": None}}
    with sockets(ems, owner, admin) as (owned, admins):
        # When the same alert.raised message arrives, and then arrives again
        send_notification(ems, message)
        owned.expect(is_alert(alert_id), "the alert")
        admins.expect(is_alert(alert_id), "the alert")
        send_notification(ems, message)
        wait_for(lambda: queue_drained(ems, "notifications"), timeout_s=DEADLINE_S, what="the repeat consumed")
        owned.settle()
        admins.settle()
        # Then each socket saw it once, and the inbox holds one copy
        assert len(owned.matching(is_alert(alert_id))) == 1
        assert len(admins.matching(is_alert(alert_id))) == 1
    assert [a["id"] for a in alerts_of(ems, owner)].count(alert_id) == 1
    assert [a["id"] for a in alerts_of(ems, admin, "?limit=500")].count(alert_id) == 1


# --- sockets the server closes, connections it prunes ----------------------------------------


def test_a_deleted_users_open_sockets_are_closed_by_the_server(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    with sockets(ems, client, client) as opened:
        for socket in opened:
            socket.settle(0)
        assert api(ems, "DELETE", f"/users/{client.id}", admin).status_code == 204
        for socket in opened:
            socket.wait_closed()


def test_a_logged_out_users_open_sockets_are_closed_and_its_token_refused(ems: RuntimeProcess) -> None:
    client, bystander = new_client(ems), new_client(ems)
    with sockets(ems, client, client, bystander) as (first, second, other):
        for socket in (first, second, other):
            socket.settle(0)
        assert api(ems, "POST", "/auth/logout", client).status_code == 204
        first.wait_closed()
        second.wait_closed()
        # And another user's socket stays open
        other.settle(0)
        assert not other.closed
    assert refused_status(ems, f"?token={client.token}") == 401


def test_a_demoted_admins_sockets_are_closed_and_its_earlier_token_refused(
        ems: RuntimeProcess, admin: Account) -> None:
    # Given a second admin with an open socket, receiving the admins' feed
    demoted = new_admin(ems)
    with sockets(ems, demoted) as (socket,):
        socket.settle(0)
        assert ems.client("dynamodb").get_item(TableName=ems.name("presence"),
                                               Key={"user_id": {"S": "role:admin"}}, ConsistentRead=True)
        # When the session admin makes them a client
        changed = api(ems, "PUT", f"/users/{demoted.id}", admin, json={"role": "client"})
        assert changed.status_code == 200 and changed.json()["role"] == "client"
        # Then their socket is closed by the server, and is no longer among the admins' sockets
        socket.wait_closed()
    feed = ems.client("dynamodb").get_item(TableName=ems.name("presence"), Key={"user_id": {"S": "role:admin"}},
                                           ConsistentRead=True).get("Item", {})
    assert not [v for v in feed.values() if v.get("M", {}).get("u", {}).get("S") == demoted.id]
    # And the token issued before the change is refused
    assert api(ems, "GET", "/auth/me", demoted).status_code == 401
    assert refused_status(ems, f"?token={demoted.token}") == 401


def test_a_password_reset_by_an_admin_closes_the_users_sockets(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    with sockets(ems, client) as (socket,):
        socket.settle(0)
        assert api(ems, "PUT", f"/users/{client.id}", admin, json={"password": "a-new-password-42"}).status_code == 200
        socket.wait_closed()
    assert api(ems, "GET", "/auth/me", client).status_code == 401


def test_a_frame_from_a_socket_whose_session_ended_is_refused_and_the_socket_closed(
        ems: RuntimeProcess) -> None:
    # Given an open socket whose user's sessions ended since it opened (the closing event not yet applied)
    client = new_client(ems)
    with sockets(ems, client) as (socket,):
        socket.settle(0)
        ems.client("dynamodb").update_item(
            TableName=ems.name("users"), Key={"id": {"S": client.id}}, UpdateExpression="SET tokens_valid_after = :t",
            ExpressionAttributeValues={":t": {"N": str(time.time() + 1)}})
        # When it sends a chat message, Then it gets an unauthorized error frame and the socket closes
        error = socket.request({"action": "chat.send", "text": "still here?"},
                               lambda f: f.get("type") == "error", "the refusal")
        assert error["error"]["code"] == "unauthorized"
        socket.wait_closed()


def test_a_push_to_a_connection_that_vanished_prunes_it(ems: RuntimeProcess, admin: Account) -> None:
    # Given a registered connection the gateway no longer has (its $disconnect was lost), beside a live one
    owner = new_client(ems, "owner")
    device_id = make_device(ems, admin, [owner])
    table = ems.client("dynamodb")
    gone_id = f"Z29uZQ{uuid.uuid4().hex[:10]}="
    now = int(time.time())
    table.put_item(TableName=ems.name("connections"), Item={
        "connection_id": {"S": gone_id}, "user_id": {"S": owner.id}, "role": {"S": "client"},
        "connected_at": {"N": str(now)}, "expires_at": {"N": str(now + 3600)}})
    presence_key = {"user_id": {"S": owner.id}}
    table.update_item(TableName=ems.name("presence"), Key=presence_key, UpdateExpression="SET conns = if_not_exists(conns, :m)",
                      ExpressionAttributeValues={":m": {"M": {}}})
    table.update_item(TableName=ems.name("presence"), Key=presence_key,
                      UpdateExpression="SET conns.#c = :entry", ExpressionAttributeNames={"#c": gone_id},
                      ExpressionAttributeValues={":entry": {"M": {"u": {"S": owner.id}, "r": {"S": "client"},
                                                                   "e": {"N": str(now + 3600)}}}})
    with sockets(ems, owner) as (live,):
        # When a frame is pushed to the owner
        send_notification(ems, {"type": "readings.updated", "readings": [
            {"device_id": device_id, "hour_start": "2026-06-18T10:00:00Z", "kwh": 0.5}]})
        # Then the live socket gets it and the vanished connection is removed from the registry
        live.expect(lambda f: f.get("type") == "reading" and f.get("device_id") == device_id, "the reading")
        wait_for(lambda: "Item" not in table.get_item(TableName=ems.name("connections"),
                                                      Key={"connection_id": {"S": gone_id}}, ConsistentRead=True),
                 timeout_s=DEADLINE_S, what="the vanished connection pruned")

        def listed() -> list[str]:
            item = table.get_item(TableName=ems.name("presence"), Key={"user_id": {"S": owner.id}},
                                  ConsistentRead=True)["Item"]
            return list(item.get("conns", {}).get("M", {}))

        wait_for(lambda: gone_id not in "".join(listed()), timeout_s=DEADLINE_S, what="its presence entry pruned")
        assert len(listed()) == 1  # the live one stays
