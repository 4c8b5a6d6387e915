"""The fleet view over HTTP, fed by the real paths: devices created over the API, readings through
the readings queue and its consumer, alerts through the notifications queue.

The runtime is shared with other tests, so rows are looked up by a name prefix of this test's own,
and the fleet-wide counts are checked for what must hold of them whatever else is there.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from tests.accounts import Account, api, new_client
from tests.harness import RuntimeProcess, wait_for


def fleet(ems: RuntimeProcess, admin: Account, **query: Any) -> dict[str, Any]:
    response = api(ems, "GET", "/fleet", admin, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def create(ems: RuntimeProcess, admin: Account, name: str) -> str:
    device_id = f"f-{uuid.uuid4().hex[:10]}"
    response = api(ems, "POST", "/devices", admin, json={"id": device_id, "name": name, "max_hourly_kwh": 1.0,
                                                          "timezone": "UTC", "owner_ids": []})
    assert response.status_code == 201, response.text
    return device_id


def send(ems: RuntimeProcess, device_id: str, kwh: float) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ems.client("sqs").send_message(QueueUrl=ems.queue_url("readings"), MessageBody=json.dumps(
        {"device_id": device_id, "timestamp": now.isoformat(), "measurement_value": kwh}))


def test_the_fleet_shows_each_meter_in_its_state_most_severe_first_with_counts_that_add_up(
        ems: RuntimeProcess, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    over = create(ems, admin, f"Fleet {marker} A")
    fine = create(ems, admin, f"Fleet {marker} B")
    new = create(ems, admin, f"Fleet {marker} C")
    send(ems, over, 1.5)
    send(ems, fine, 0.2)

    def settled() -> list[dict[str, Any]] | None:
        rows = fleet(ems, admin, q=f"fleet {marker}")["items"]
        states = [(r["device_id"], r["state"]) for r in rows]
        done = states == [(over, "over_limit"), (new, "never_reported"), (fine, "reporting")]
        return rows if done and rows[0]["open_alerts"] == 1 and rows[2]["last_reading_at"] else None

    rows = wait_for(settled, timeout_s=30, what="the three meters in their states, the alert open")
    assert (rows[0]["hour_kwh"], rows[0]["today_kwh"], rows[0]["max_hourly_kwh"]) == (1.5, 1.5, 1.0)
    assert (rows[1]["last_reading_at"], rows[1]["today_kwh"], rows[1]["open_alerts"]) == (None, None, 0)
    assert rows[2]["hour_kwh"] == 0.2
    summary = fleet(ems, admin, limit=1)["summary"]
    assert summary["devices"] == sum(summary[s] for s in ("reporting", "over_limit", "silent", "never_reported"))
    assert summary["over_limit"] >= 1 and summary["never_reported"] >= 1 and summary["open_alerts"] >= 1
    assert [r["device_id"] for r in fleet(ems, admin, q=f"FLEET {marker}", state="reporting")["items"]] == [fine]

    # An admin's acknowledgement closes the alert for the fleet; a deleted meter leaves it.
    alert_id = f"{over}:{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:00:00Z')}"
    assert api(ems, "POST", f"/alerts/{alert_id}/ack", admin).status_code == 200
    assert fleet(ems, admin, q=f"fleet {marker}")["items"][0]["open_alerts"] == 0
    assert api(ems, "DELETE", f"/devices/{over}", admin).status_code == 204
    wait_for(lambda: [r["device_id"] for r in fleet(ems, admin, q=f"fleet {marker}")["items"]] == [new, fine],
             what="the deleted meter gone from the fleet")


def test_every_meter_is_on_exactly_one_page(ems: RuntimeProcess, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    made = {create(ems, admin, f"Paged {marker} {i:02d}") for i in range(7)}
    wait_for(lambda: len(fleet(ems, admin, q=f"paged {marker}")["items"]) == 7, what="the meters in the fleet")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = fleet(ems, admin, q=f"paged {marker}", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [r["device_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "201"}, {"state": "sleeping"}, {"q": "x" * 65},
                                   {"cursor": "reporting.bm90IGEga2V5"}, {"cursor": "nonsense"}, {"sort": "name"}])
def test_bad_fleet_queries_get_422(ems: RuntimeProcess, admin: Account, query: dict[str, str]) -> None:
    response = api(ems, "GET", "/fleet", admin, params=query)
    assert response.status_code == 422, response.text


def test_only_admins_see_the_fleet(ems: RuntimeProcess) -> None:
    client = new_client(ems, "fleetclient")
    assert api(ems, "GET", "/fleet", client).status_code == 403
    assert api(ems, "GET", "/fleet").status_code == 401
