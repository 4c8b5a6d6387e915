"""Metering through real SQS and DynamoDB: exact totals, duplicates, poison messages, parallel
consumers, alerts, the write budget, history and readings over HTTP.

Given devices created over HTTP in the running product app, reading messages go to the
readings queue and what the consumer made of them is read back through the REST API and
the tables. Tests poll up to a deadline; speed is measured by the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.accounts import Account, api, new_client, runtime_env
from tests.harness import PROJECT_DIR, RuntimeProcess, wait_for
from tests.sockets import expected_hours, stored_hours

UTC = dt.UTC
DAY = dt.date(2026, 6, 15)  # a day without a clock change in Europe/Bucharest


@pytest.fixture(scope="module")
def owner(ems: RuntimeProcess) -> Account:
    return new_client(ems, "owner")


def make_device(ems: RuntimeProcess, admin: Account, owner: Account, limit: float = 1000.0,
                timezone: str = "Europe/Bucharest", tariff: float | None = 0.5) -> str:
    device_id = f"m-{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {"id": device_id, "name": f"Meter {device_id}", "max_hourly_kwh": limit,
                            "timezone": timezone, "owner_ids": [owner.id]}
    if tariff is not None:
        body.update(tariff_per_kwh=tariff, currency="EUR")
    assert api(ems, "POST", "/devices", admin, json=body).status_code == 201
    # The monitoring replica is fed by the device event through SNS and SQS.
    meters = ems.client("dynamodb")
    wait_for(lambda: meters.get_item(TableName=ems.name("meters"), Key={"device_id": {"S": device_id}}).get("Item"),
             what="the device in monitoring's replica")
    return device_id


def day_readings(device_id: str, day: dt.date, zone_offset_h: int, rng: random.Random) -> list[dict[str, Any]]:
    """Every 10-minute reading of a local day (values with three decimals)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=UTC) - dt.timedelta(hours=zone_offset_h)
    return [
        {"timestamp": (start + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "device_id": device_id, "measurement_value": round(rng.uniform(0.01, 0.4), 3)}
        for i in range(24 * 6)
    ]


def send(ems: RuntimeProcess, bodies: list[Any]) -> None:
    sqs = ems.client("sqs")
    url = ems.queue_url("readings")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b if isinstance(b, str) else json.dumps(b)}
                   for i, b in enumerate(bodies[start:start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def alerts_of(ems: RuntimeProcess, device_id: str, kind: str = "over_consumption") -> list[dict[str, Any]]:
    """The device's stored alerts of one kind (its readings are old, so a silent-meter check may add one)."""
    items = ems.client("dynamodb").query(
        TableName=ems.name("alerts"), IndexName="by_device", KeyConditionExpression="device_id = :d",
        ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
    return [i for i in items if i["kind"]["S"] == kind]


def test_a_simulated_day_for_several_devices_gives_exact_hourly_totals(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    rng = random.Random(7)
    devices = [make_device(ems, admin, owner) for _ in range(3)]
    readings = [r for d in devices for r in day_readings(d, DAY, 3, rng)]
    rng.shuffle(readings)  # late and out of order
    send(ems, readings)
    for device_id in devices:
        mine = [r for r in readings if r["device_id"] == device_id]
        expected = expected_hours(mine)
        wait_for(lambda d=device_id, e=expected: stored_hours(ems, d) == e, timeout_s=60,
                 what=f"exact totals of {device_id}")
    day = api(ems, "GET", f"/devices/{devices[0]}/consumption?date={DAY}", owner).json()
    assert len(day["hours"]) == 24 and all(h["readings"] == 6 for h in day["hours"])
    expected_total = sum(expected_hours([r for r in readings if r["device_id"] == devices[0]]).values())
    assert Decimal(str(day["total_kwh"])) == round(expected_total, 6)
    assert day["cost"] == pytest.approx(float(expected_total) * 0.5, abs=1e-6)


def test_every_message_sent_three_times_still_gives_exact_totals_and_one_alert(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    device_id = make_device(ems, admin, owner, limit=1.0)
    hour = dt.datetime(2026, 6, 15, 18, tzinfo=UTC)
    readings = [{"timestamp": (hour + dt.timedelta(minutes=10 * i)).isoformat(), "device_id": device_id,
                 "measurement_value": 0.3} for i in range(6)]
    send(ems, readings * 3)
    wait_for(lambda: stored_hours(ems, device_id) == {"2026-06-15T18:00:00Z": Decimal("1.8")}, timeout_s=60,
             what="the hour's exact total")
    wait_for(lambda: len(alerts_of(ems, device_id)) == 1, what="the alert")
    # a replay months later counts nothing
    send(ems, readings)
    wait_for(lambda: ems.client("sqs").get_queue_attributes(
        QueueUrl=ems.queue_url("readings"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"] == "0", what="the replay consumed")
    assert stored_hours(ems, device_id) == {"2026-06-15T18:00:00Z": Decimal("1.8")}
    alert = alerts_of(ems, device_id)
    assert len(alert) == 1 and alert[0]["id"]["S"] == f"{device_id}:2026-06-15T18:00:00Z"
    assert "notified_at" in alert[0]


def test_poison_messages_reach_the_dlq_with_a_reason_while_the_good_ones_count(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    device_id = make_device(ems, admin, owner)
    marker = uuid.uuid4().hex
    good = [{"timestamp": f"2026-06-14T10:{m:02d}:00Z", "device_id": device_id, "measurement_value": 0.25}
            for m in (0, 10, 20)]
    poison = [
        f"not json {marker}",
        {"timestamp": "2026-06-14T10:30:00Z", "device_id": device_id, "measurement_value": -1, "m": marker},
        {"timestamp": "never", "device_id": device_id, "measurement_value": 1, "m": marker},
        {"timestamp": "2026-06-14T10:40:00Z", "device_id": device_id, "measurement_value": 1e9, "m": marker},
    ]
    send(ems, [good[0], poison[0], good[1], poison[1], poison[2], good[2], poison[3]])
    wait_for(lambda: stored_hours(ems, device_id) == {"2026-06-14T10:00:00Z": Decimal("0.75")},
             what="the good readings counted")
    sqs = ems.client("sqs")
    dlq = ems.queue_url("readings-dlq")
    found: dict[str, str] = {}

    def collect() -> bool:
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                     VisibilityTimeout=60).get("Messages", []):
            if marker in m["Body"]:
                found[m["Body"]] = m["MessageAttributes"]["error_reason"]["StringValue"]
        return len(found) == 4

    wait_for(collect, what="four poison messages in the DLQ")
    reasons = sorted(found.values())
    assert any("not JSON" in r for r in reasons) and any("negative" in r for r in reasons)
    assert any("ISO-8601" in r for r in reasons) and any("maximum" in r for r in reasons)


def test_an_unknown_device_is_retried_then_dead_lettered_with_its_reason(ems: RuntimeProcess) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    send(ems, [{"timestamp": "2026-06-14T11:00:00Z", "device_id": ghost, "measurement_value": 0.1}])
    sqs = ems.client("sqs")
    dlq = ems.queue_url("readings-dlq")

    def dead() -> dict[str, Any] | None:
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                     VisibilityTimeout=60).get("Messages", []):
            if ghost in m["Body"]:
                return m
        return None

    message = wait_for(dead, timeout_s=30, what="the unknown device's reading in the DLQ")
    assert ghost in message["MessageAttributes"]["error_reason"]["StringValue"]


def dead_letters(ems: RuntimeProcess, marker: str, count: int) -> list[dict[str, Any]]:
    """The `count` messages of the readings DLQ whose body holds `marker`, with their attributes."""
    sqs = ems.client("sqs")
    dlq = ems.queue_url("readings-dlq")
    found: dict[str, dict[str, Any]] = {}

    def collect() -> bool:
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                     VisibilityTimeout=60).get("Messages", []):
            if marker in m["Body"]:
                found[m["MessageId"]] = m
        return len(found) >= count

    wait_for(collect, timeout_s=30, what=f"{count} dead letters")
    return list(found.values())


def test_a_batch_message_counts_its_good_readings_and_dead_letters_each_bad_one_alone(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    # Given one batch message of two devices' hour, with a bad reading and an unknown device inside
    first, second = make_device(ems, admin, owner), make_device(ems, admin, owner)
    marker = uuid.uuid4().hex[:8]
    ghost = f"ghost-{marker}"
    good = [{"timestamp": f"2026-06-16T07:{m:02d}:00Z", "device_id": device, "measurement_value": 0.125}
            for m in (0, 10, 20, 30, 40, 50) for device in (first, second)]
    bad = [{"timestamp": "2026-06-16T07:05:00Z", "device_id": first, "measurement_value": -1, "m": marker},
           {"timestamp": "2026-06-16T07:05:00Z", "device_id": ghost, "measurement_value": 0.1}]
    batch = {"readings": good[:5] + [bad[0]] + good[5:] + [bad[1]]}
    # When it is sent three times (a producer's retries), beside a message whose readings is no list
    send(ems, [batch, batch, {"readings": f"none {marker}"}, batch])
    # Then both devices' hour is exact, every reading counted once
    for device in (first, second):
        wait_for(lambda d=device: stored_hours(ems, d) == {"2026-06-16T07:00:00Z": Decimal("0.75")}, timeout_s=60,
                 what="the batch's exact totals")
    # And each bad reading reached the dead-letter queue alone, with its reason and place in the batch
    letters = dead_letters(ems, marker, 3 * 2 + 1)
    bodies = [json.loads(m["Body"]) for m in letters]
    negative = [m for m, b in zip(letters, bodies, strict=True) if b.get("measurement_value") == -1]
    unknown = [m for m, b in zip(letters, bodies, strict=True) if b.get("device_id") == ghost]
    whole = [m for m, b in zip(letters, bodies, strict=True) if "readings" in b]
    assert len(negative) == 3 and len(unknown) == 3 and len(whole) == 1
    assert all("negative" in m["MessageAttributes"]["error_reason"]["StringValue"] for m in negative)
    assert all(m["MessageAttributes"]["reading_index"]["StringValue"] == "5" for m in negative)
    assert all(ghost in m["MessageAttributes"]["error_reason"]["StringValue"] for m in unknown)
    assert all(m["MessageAttributes"]["reading_index"]["StringValue"] == "13" for m in unknown)
    assert "list" in whole[0]["MessageAttributes"]["error_reason"]["StringValue"]


def test_two_consumers_in_parallel_give_exact_totals(ems: RuntimeProcess, admin: Account, owner: Account) -> None:
    """The runtime's own pollers and two more consumers in this process share one queue's work."""
    from tests.consumers import run_consumers

    device_id = make_device(ems, admin, owner)
    readings = day_readings(device_id, DAY, 3, random.Random(11))
    send(ems, readings + readings)  # every reading twice, racing across consumers
    run_consumers(ems, count=2, seconds=8)
    wait_for(lambda: stored_hours(ems, device_id) == expected_hours(readings), timeout_s=60,
             what="exact totals with parallel consumers")


def test_the_deadlines_new_hours_took_over_are_dropped_25_to_a_request(ems: RuntimeProcess) -> None:
    from tests.consumers import drop_deadlines

    # 27 hours with a deadline, one without and one absent: dropped in two requests (a statement
    # that finds no deadline fails alone), and no hour made by it
    dropped = drop_deadlines(ems)
    assert dropped["requests"] == 2 and dropped["with_deadline"] == [], dropped
    assert dropped["hours"] == dropped["devices"]
    assert dropped["units"] >= 27


def test_the_consumer_spends_at_most_one_dynamodb_write_per_reading(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    from tests.consumers import count_writes_consuming

    device_id = make_device(ems, admin, owner)
    readings = day_readings(device_id, dt.date(2026, 6, 10), 3, random.Random(3))
    writes, counted = count_writes_consuming(ems, readings)
    assert counted == len(readings)
    assert 0 < writes <= counted, f"{writes} DynamoDB write requests for {counted} readings"


def test_readings_over_http_need_the_devices_api_key(ems: RuntimeProcess, admin: Account, owner: Account) -> None:
    device_id = make_device(ems, admin, owner)
    key = api(ems, "POST", f"/devices/{device_id}/api-keys", admin).json()["api_key"]
    body = {"readings": [
        {"timestamp": "2026-06-13T09:10:00Z", "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": "2026-06-13T09:20:00Z", "device_id": "someone-else", "measurement_value": 0.5},
        {"timestamp": "2026-06-13T09:30:00Z", "device_id": device_id, "measurement_value": -2},
    ]}
    assert api(ems, "POST", "/readings", json=body).status_code == 401
    assert api(ems, "POST", "/readings", json=body, headers={"X-Api-Key": key + "x"}).status_code == 401
    response = api(ems, "POST", "/readings", json=body, headers={"X-Api-Key": key})
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2]
    wait_for(lambda: stored_hours(ems, device_id) == {"2026-06-13T09:00:00Z": Decimal("0.5")},
             what="the HTTP reading counted")


def test_history_is_only_for_owners_and_admins_and_missing_hours_are_null(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    device_id = make_device(ems, admin, owner, timezone="Europe/Bucharest")
    send(ems, [{"timestamp": "2026-10-25T07:10:00Z", "device_id": device_id, "measurement_value": 1.25}])
    wait_for(lambda: stored_hours(ems, device_id), what="the reading counted")
    day = api(ems, "GET", f"/devices/{device_id}/consumption?date=2026-10-25", owner).json()
    assert len(day["hours"]) == 25  # clocks go back that night
    filled = [h for h in day["hours"] if h["kwh"] is not None]
    assert filled == [{"start": "2026-10-25T09:00:00+02:00", "kwh": 1.25, "readings": 1, "price_per_kwh": 0.5,
                       "cost": 0.625, "reset": False}]
    assert day["peak_hour"] == "2026-10-25T09:00:00+02:00"
    stranger = new_client(ems, "stranger")
    for path in (f"/devices/{device_id}/consumption?date=2026-10-25", f"/devices/{device_id}/readings",
                 f"/devices/{device_id}/consumption.csv?from=2026-10-25&to=2026-10-25"):
        assert api(ems, "GET", path, stranger).status_code == 404
        assert api(ems, "GET", path).status_code == 401
        assert api(ems, "GET", path, admin).status_code == 200
    csv_text = api(ems, "GET", f"/devices/{device_id}/consumption.csv?from=2026-10-25&to=2026-10-25", owner).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "hour_start_local,hour_start_utc,kwh,readings,price_per_kwh,cost,currency" and len(lines) == 26
    assert "2026-10-25T09:00:00+02:00,2026-10-25T07:00:00Z,1.25,1,0.5,0.625,EUR" in lines
    ranged = api(ems, "GET", f"/devices/{device_id}/consumption?from=2026-10-24&to=2026-10-26&granularity=day",
                 owner).json()
    assert [p["kwh"] for p in ranged["points"]] == [None, 1.25, None]
    assert ranged["previous"]["from"] == "2026-10-21" and ranged["previous"]["to"] == "2026-10-23"
    # Raw readings: within a window of 31 days, newest first, as many as the limit asks
    recent = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    stamps = [(recent + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(12)]
    send(ems, [{"timestamp": t, "device_id": device_id, "measurement_value": 0.5} for t in stamps])
    since = (recent - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_for(lambda: len(api(ems, "GET", f"/devices/{device_id}/readings?since={since}", owner).json()["items"])
             == 12, what="the recent readings counted")
    newest = api(ems, "GET", f"/devices/{device_id}/readings?since={since}&limit=1", owner).json()
    assert newest["items"] == [{"timestamp": stamps[-1], "kwh": 0.5}]
    three = api(ems, "GET", f"/devices/{device_id}/readings?limit=3", owner).json()
    assert [r["timestamp"] for r in three["items"]] == stamps[-1:-4:-1]
    too_old = api(ems, "GET", f"/devices/{device_id}/readings?since=2026-10-25T00:00:00Z", owner)
    assert too_old.status_code == 422 and too_old.json()["error"]["details"][0]["field"] == "since"
    bad = api(ems, "GET", f"/devices/{device_id}/consumption?date=2026-13-45", owner)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "date"
    too_long = api(ems, "GET", f"/devices/{device_id}/consumption?from=2026-01-01&to=2026-12-31&granularity=hour",
                   owner)
    assert too_long.status_code == 422


@pytest.mark.parametrize("query", [
    "consumption?date=9999-12-31", "consumption?date=0001-01-01", "consumption?from=0001-01-01&to=0001-01-01",
    "consumption?from=2026-01-01&to=9999-12-31&granularity=day", "consumption.csv?from=0001-01-01&to=0001-01-02",
    "consumption.csv?from=9999-12-30&to=9999-12-31", "readings?since=0001-01-01T00:00:00%2B01:00",
    "readings?since=9999-12-31T23:59:59-01:00", "readings?since=2026-01-01T00:00:00Z",
])
def test_dates_at_the_edges_of_the_calendar_get_a_clear_422(
    ems: RuntimeProcess, admin: Account, owner: Account, query: str
) -> None:
    device_id = shared_device(ems, admin, owner)
    response = api(ems, "GET", f"/devices/{device_id}/{query}", owner)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error" and response.json()["error"]["details"]


_shared: dict[str, str] = {}


def shared_device(ems: RuntimeProcess, admin: Account, owner: Account) -> str:
    """One device for tests that only read (made once)."""
    if "id" not in _shared:
        _shared["id"] = make_device(ems, admin, owner)
    return _shared["id"]


def test_readings_at_the_edges_of_time_are_refused_one_by_one_never_a_500(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    device_id = make_device(ems, admin, owner)
    key = api(ems, "POST", f"/devices/{device_id}/api-keys", admin).json()["api_key"]
    good = (dt.datetime.now(UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    future = (dt.datetime.now(UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    body = {"readings": [
        {"timestamp": good, "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": "0001-01-01T00:00:00+01:00", "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": "9999-12-31T23:59:59-01:00", "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": int("1" + "0" * 400), "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": good, "device_id": device_id, "measurement_value": int("1" + "0" * 400)},
        {"timestamp": future, "device_id": device_id, "measurement_value": 0.5},
        {"timestamp": "2099-01-01T00:00:00Z", "device_id": device_id, "measurement_value": 0.5},
    ]}
    response = api(ems, "POST", "/readings", json=body, headers={"X-Api-Key": key})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2, 3, 4, 5, 6]
    # And the same readings sent to the queue as one batch message: the good one counts, each other is dead-lettered
    marker = uuid.uuid4().hex[:8]
    batch = {"readings": [{**r, "m": marker} for r in body["readings"]]}
    ems.client("sqs").send_message(QueueUrl=ems.queue_url("readings"), MessageBody=json.dumps(batch))
    letters = dead_letters(ems, marker, 6)
    reasons = sorted(m["MessageAttributes"]["error_reason"]["StringValue"] for m in letters)
    assert sum("out of range" in r for r in reasons) == 3 and sum("future" in r for r in reasons) == 2
    assert any("above the maximum" in r for r in reasons)


def test_a_meter_silent_for_three_intervals_gets_one_silent_meter_alert(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    """The scheduled check, run as the schedule runs it, over a meter last heard 40 minutes ago."""
    device_id = make_device(ems, admin, owner)
    last = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=40)
    send(ems, [{"timestamp": last.isoformat(), "device_id": device_id, "measurement_value": 0.2}])
    wait_for(lambda: stored_hours(ems, device_id), what="the last reading counted")
    run_silent_check(ems)
    silent = wait_for(lambda: alerts_of(ems, device_id, "silent_meter"), what="the silent-meter alert")
    run_silent_check(ems)  # a second run raises nothing new for the same silence
    silent = alerts_of(ems, device_id, "silent_meter")
    assert len(silent) == 1
    assert silent[0]["id"]["S"] == f"{device_id}:silent:{last.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    inbox = wait_for(lambda: [a for a in api(ems, "GET", "/alerts", owner).json()["items"]
                              if a["device_id"] == device_id], what="the alert in the owner's inbox")
    assert [a["kind"] for a in inbox] == ["silent_meter"]
    # And the fleet shows it silent until it reports again
    rows = api(ems, "GET", "/fleet", admin, params={"q": f"Meter {device_id}"}).json()["items"]
    assert [(r["device_id"], r["state"]) for r in rows] == [(device_id, "silent")]
    send(ems, [{"timestamp": dt.datetime.now(UTC).isoformat(), "device_id": device_id, "measurement_value": 0.1}])
    wait_for(lambda: api(ems, "GET", "/fleet", admin, params={"q": f"Meter {device_id}"}).json()["items"][0]["state"]
             == "reporting", what="the meter reporting again")


def run_silent_check(ems: RuntimeProcess) -> None:
    """The schedule's step in a process of its own, then the runtime's consumer of its shard messages."""
    snippet = "from chalicelib.monitoring import silent; print(silent.SilenceWatch().start())"
    done = subprocess.run([sys.executable, "-c", snippet], cwd=PROJECT_DIR, env=runtime_env(ems),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    sqs, url = ems.client("sqs"), ems.queue_url("silent-checks")

    def handled() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(value == "0" for value in counts.values())

    wait_for(handled, what="every shard of the silent check handled")
