"""The fleet view on the replica's indexes (moto in-process): states kept by the paths that change
them, severity then name, exact counts, paging that shows each meter once, and a cost that
follows the page, not the fleet."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.monitoring import replica
from chalicelib.monitoring.domain import WriteStats
from chalicelib.monitoring.fleet import Fleet, FleetPage, FleetQuery
from chalicelib.monitoring.readings import Reading
from chalicelib.monitoring.replica import DynamoMeterStatus, MeterItem
from chalicelib.monitoring.totals import DynamoHourTotals
from chalicelib.platform.pagination import by_name
from tests.aws_calls import counted_calls

NOW = dt.datetime(2026, 11, 23, 20, 30, tzinfo=dt.UTC)
HOUR = "2026-11-23T20:00:00Z"


def event(kind: str, version: int, device_id: str, name: str, limit: float = 1.0) -> str:
    return json.dumps({"type": kind, "event_id": str(uuid.uuid4()), "schema_version": 1, "entity_id": device_id,
                       "entity_version": version, "occurred_at": "2026-11-23T10:00:00+00:00",
                       "data": {"device": {"id": device_id, "name": name, "max_hourly_kwh": limit,
                                           "timezone": "UTC", "owner_ids": []}}})


def create(device_id: str, name: str) -> None:
    assert replica.apply(replica.parse(event("device.created", 1, device_id, name)))


def report(device_id: str, kwh: str, at: dt.datetime = NOW) -> None:
    """A counted reading, and what ingestion tells the fleet about it."""
    hours = DynamoHourTotals()
    hours.add(device_id, at.strftime("%Y-%m-%dT%H:00:00Z"), [Reading(device_id, at, Decimal(kwh))], WriteStats())
    DynamoMeterStatus().reported(device_id)


def view(**query: Any) -> FleetPage:
    return Fleet(lambda: {"b-over": 2, "d-quiet": 1}, clock=lambda: NOW).page(FleetQuery.model_validate(query))


def seed() -> None:
    """Five meters, one in each state (two reporting), named so that names and severity disagree."""
    for device_id, name in [("a-fine", "Alpha"), ("b-over", "Zulu"), ("c-new", "Bravo"), ("d-quiet", "Yankee"),
                            ("e-fine", "charlie")]:
        create(device_id, name)
    report("a-fine", "0.2")
    report("e-fine", "0.1")
    report("b-over", "1.5")
    DynamoMeterStatus().went_over("b-over", HOUR)
    report("d-quiet", "0.1", NOW - dt.timedelta(hours=2))
    DynamoMeterStatus().silenced("d-quiet")


def test_the_fleet_lists_the_most_severe_first_then_by_name_with_exact_counts(meter_stage: str) -> None:
    seed()
    page = view()

    assert [(r.device_id, r.state) for r in page.items] == [
        ("b-over", "over_limit"), ("d-quiet", "silent"), ("c-new", "never_reported"),
        ("a-fine", "reporting"), ("e-fine", "reporting")]
    assert page.summary.model_dump() == {"devices": 5, "reporting": 2, "over_limit": 1, "silent": 1,
                                         "never_reported": 1, "open_alerts": 3}
    over, quiet, new, fine = page.items[0], page.items[1], page.items[2], page.items[3]
    assert (over.hour_kwh, over.today_kwh, over.open_alerts, over.max_hourly_kwh) == (1.5, 1.5, 2, 1.0)
    assert (quiet.last_reading_at, quiet.hour_kwh, quiet.today_kwh) == ("2026-11-23T18:30:00Z", None, 0.1)
    assert (new.last_reading_at, new.today_kwh) == (None, None)
    assert fine.last_reading_at == "2026-11-23T20:30:00Z" and page.next_cursor is None


def test_state_filter_name_prefix_and_the_hour_that_ends(meter_stage: str) -> None:
    seed()
    assert [r.device_id for r in view(state="reporting").items] == ["a-fine", "e-fine"]
    assert [r.device_id for r in view(q="CH").items] == ["e-fine"]  # without case
    later = Fleet(dict, clock=lambda: NOW + dt.timedelta(hours=1)).page(FleetQuery())
    assert later.summary.over_limit == 0 and later.summary.reporting == 3  # over the limit is this hour's


def test_a_reading_ends_a_silence_and_a_first_reading_ends_never_reported(meter_stage: str) -> None:
    seed()
    report("d-quiet", "0.1")
    report("c-new", "0.1")
    assert view().summary.model_dump() | {"open_alerts": 0} == {
        "devices": 5, "reporting": 4, "over_limit": 1, "silent": 0, "never_reported": 0, "open_alerts": 0}


def test_a_deleted_device_leaves_the_fleet_and_its_count(meter_stage: str) -> None:
    seed()
    assert replica.apply(replica.parse(event("device.deleted", 2, "b-over", "Zulu")))
    assert replica.apply(replica.parse(event("device.updated", 2, "a-fine", "Aardvark")))
    page = view()
    assert [r.device_id for r in page.items] == ["d-quiet", "c-new", "a-fine", "e-fine"]
    assert page.items[2].name == "Aardvark" and page.summary.devices == 4 and page.summary.over_limit == 0


def test_paging_shows_every_meter_once_in_order(meter_stage: str) -> None:
    seed()
    for i in range(12):
        create(f"m{i:02d}", f"Meter {i:02d}")
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = view(limit=3, cursor=cursor) if cursor else view(limit=3)
        seen += [r.device_id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen[:3] == ["b-over", "d-quiet", "c-new"] and len(seen) == len(set(seen)) == 17


@pytest.mark.parametrize("cursor", ["nonsense", "reporting.bm90IGEga2V5", "sleeping.", "silent.e30="])
def test_a_forged_cursor_is_refused(meter_stage: str, cursor: str) -> None:
    seed()
    with pytest.raises(errors.ValidationError):
        view(cursor=cursor)


def count_calls(run: Any) -> Counter[str]:
    with counted_calls() as calls:
        run()
    return calls


def test_a_page_costs_what_it_shows_whatever_the_fleet_holds(meter_stage: str) -> None:
    seed()
    small = count_calls(lambda: view(limit=5))
    with MeterItem.batch_write() as batch:  # a hundred more reporting meters
        for i in range(100):
            batch.save(MeterItem(f"z{i:03d}", name=f"Zz {i:03d}", max_hourly_kwh=1, entity_version=1,
                                 listing=replica.LISTED, name_key=by_name(f"Zz {i:03d}", f"z{i:03d}")))
    large = count_calls(lambda: view(limit=5))

    assert large == small and large["Scan"] == 0


def test_meters_kept_before_the_fleet_view_are_given_their_status_once(meter_stage: str) -> None:
    # Meters as an earlier version kept them: no listing, no name key, no count of the fleet.
    for device_id, name in [("old-1", "Old one"), ("old-2", "Old two")]:
        MeterItem(device_id, name=name, max_hourly_kwh=1, timezone="UTC", entity_version=3).save()
    MeterItem("old-gone", name="Gone", max_hourly_kwh=1, entity_version=4, deleted=True).save()
    report("old-1", "0.3")

    assert replica.backfill_fleet() == 2
    page = view()
    assert [(r.device_id, r.state) for r in page.items] == [("old-2", "never_reported"), ("old-1", "reporting")]
    assert page.summary.devices == 2
    assert replica.backfill_fleet() == 0  # a second run changes nothing
    assert view().summary.devices == 2
