"""Importing meters over HTTP (`POST /api/devices/import`, text/csv) into the running system:
the imported meters are in the fleet view, their owners see them, and ingestion counts their
readings; bad rows are answered with their reasons, bad files and bad requests with 4xx."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import requests

from chalicelib.devices import importing
from tests.accounts import Account, api, assert_error, new_client
from tests.harness import RuntimeProcess, wait_for

HEADER = "serial,name,address,max_hourly_kwh,timezone,owners"


def send_csv(ems: RuntimeProcess, account: Account, body: str | bytes,
             content_type: str = "text/csv") -> requests.Response:
    return api(ems, "POST", "/devices/import", account, data=body if isinstance(body, bytes) else body.encode(),
               headers={"Content-Type": content_type})


def fleet_rows(ems: RuntimeProcess, admin: Account, prefix: str) -> list[dict[str, Any]]:
    response = api(ems, "GET", "/fleet", admin, params={"q": prefix})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_imported_meters_are_in_the_fleet_seen_by_their_owners_and_counted_by_ingestion(
        ems: RuntimeProcess, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    owner = new_client(ems, "importer")
    body = "\n".join([
        HEADER,
        f"IMP-{marker}-1,Imported {marker} A,Main St 1,1.0,Europe/Bucharest,{owner.username.upper()}",
        f"IMP-{marker}-2,Imported {marker} B,,2.5,,",
        f"IMP-{marker}-3,=cmd|' /C calc'!A0,,1,,",
        f"IMP-{marker}-4,Imported {marker} D,,1,,nobody_{marker}",
    ])
    response = send_csv(ems, admin, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [(r["row"], r["serial"]) for r in result["created"]] == [(1, f"IMP-{marker}-1"), (2, f"IMP-{marker}-2")]
    assert {r["row"]: r["problems"][0]["field"] for r in result["rejected"]} == {3: "name", 4: "owners"}
    first = result["created"][0]["device_id"]

    # The owner sees it with its serial; the fleet lists both, never reported yet.
    mine = api(ems, "GET", "/devices", owner).json()["items"]
    assert [(d["id"], d["serial"], d["timezone"]) for d in mine] == [(first, f"IMP-{marker}-1", "Europe/Bucharest")]
    wait_for(lambda: [r["state"] for r in fleet_rows(ems, admin, f"imported {marker}")]
             == ["never_reported", "never_reported"], what="the imported meters in the fleet")

    # Ingestion knows it: a reading over its limit is counted and turns it over the limit.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ems.client("sqs").send_message(QueueUrl=ems.queue_url("readings"), MessageBody=json.dumps(
        {"device_id": first, "timestamp": now.isoformat(), "measurement_value": 1.25}))
    rows = wait_for(lambda: (r := fleet_rows(ems, admin, f"imported {marker}")) and r[0]["state"] == "over_limit"
                    and r, what="the imported meter's reading counted")
    assert rows[0]["device_id"] == first and rows[0]["hour_kwh"] == 1.25

    # The same file again (a retry) creates nothing; a changed row updates its device.
    again = send_csv(ems, admin, body).json()
    assert again["created"] == [] and [r["device_id"] for r in again["unchanged"]] == [
        r["device_id"] for r in result["created"]]
    changed = send_csv(ems, admin, f"{HEADER}\nIMP-{marker}-2,Imported {marker} B,Depot,5,UTC,{owner.username}")
    assert [r["serial"] for r in changed.json()["updated"]] == [f"IMP-{marker}-2"]
    assert {d["serial"] for d in api(ems, "GET", "/devices", owner).json()["items"]} == {
        f"IMP-{marker}-1", f"IMP-{marker}-2"}
    wait_for(lambda: [r["max_hourly_kwh"] for r in fleet_rows(ems, admin, f"imported {marker}")][-1] == 5.0,
             what="the update in the fleet")


def test_a_request_the_import_cannot_take_is_answered_with_4xx_and_changes_nothing(
        ems: RuntimeProcess, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    client = new_client(ems)
    assert_error(send_csv(ems, client, f"{HEADER}\nX-{marker},A,,1,,"), 403, "forbidden")
    assert_error(send_csv(ems, admin, json.dumps({"serial": "x"}), "application/json"), 415, "unsupported_media_type")
    assert_error(send_csv(ems, admin, f"id,name\nX-{marker},A"), 422, "validation_error", {"header"})
    assert_error(send_csv(ems, admin, b"\xff\xfe\xfa"), 422, "validation_error", {"body"})
    rows = "\n".join(f"X-{marker}-{n},Meter {marker} {n},,1,," for n in range(importing.MAX_ROWS + 1))
    assert_error(send_csv(ems, admin, f"{HEADER}\n{rows}"), 413, "payload_too_large")
    huge = f"{HEADER}\nX-{marker},Meter {marker},{'x' * 300_000},1,,"
    assert_error(send_csv(ems, admin, huge), 413, "payload_too_large")
    assert api(ems, "GET", "/devices", admin, params={"q": f"meter {marker}"}).json()["items"] == []
