"""Time-of-use tariffs in the browser: an admin edits them on the device page, a bad list shows the
API's reason, and the owner's day view costs each hour at the rate in force at its start."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from tests.e2e.conftest import Backend, Browsers, screenshot


def test_an_admin_sets_time_of_use_tariffs_and_the_owner_sees_each_hour_costed(backend: Backend,
                                                                                 browsers: Browsers) -> None:
    client = backend.create_client("tou")
    device_id = backend.create_device([client], limit=50, name=f"Tariff flat {client.username}", tariff=0.3)
    now = dt.datetime.now(dt.UTC)
    price = "0.5" if now.hour >= 12 else "0.2"  # the device's zone is UTC

    admin = browsers.signed_in("admin", "admin123")
    admin.goto(f"/admin/devices/{device_id}")
    expect(admin.get_by_role("heading", name=re.compile("^Edit Tariff flat"))).to_be_visible()
    expect(admin.get_by_text("No time-of-use tariffs.")).to_be_visible()

    admin.get_by_role("button", name="Add a tariff").click()
    admin.get_by_label("Tariff 1 from").fill((now.date() - dt.timedelta(days=30)).isoformat())
    expect(admin.get_by_label("Tariff 1 currency")).to_have_value("EUR")
    admin.get_by_label("Tariff 1 rates: rate 1 price per kWh").fill("0.2")
    admin.get_by_role("button", name="Add a rate").click()
    admin.get_by_label("Tariff 1 rates: rate 2 starts at").fill("00:00")  # not after the first: refused
    admin.get_by_label("Tariff 1 rates: rate 2 price per kWh").fill("0.5")
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_text(re.compile("rate starts must be in increasing order"))).to_be_visible()

    admin.get_by_label("Tariff 1 rates: rate 2 starts at").fill("12:00")
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    screenshot(admin, "admin-device-tariffs")
    device = backend.call("GET", f"/devices/{device_id}", backend.login("admin", "admin123")).json()
    assert device["tariffs"] == [{"from": (now.date() - dt.timedelta(days=30)).isoformat(), "currency": "EUR",
                                  "rates": [{"start": "00:00", "price_per_kwh": 0.2},
                                            {"start": "12:00", "price_per_kwh": 0.5}], "weekend_rates": None}]

    # The new list reaches monitoring's replica; a reading this hour is costed at this hour's rate.
    start = now.replace(minute=0, second=0, microsecond=0)
    backend.send_readings(device_id, [(start, 2.0)])
    page = browsers.signed_in(client.username, client.password)
    page.goto(f"/devices/{device_id}")
    expect(page.get_by_test_id("day-total")).to_have_text(re.compile(r"^2 kWh"))
    page.get_by_text("Show the hours as a table").click()
    row = page.locator(".hour-table tbody tr").nth(now.hour)
    expect(row).to_contain_text(f"{price} EUR")
    expect(row).to_contain_text(f"{float(price) * 2:.2f}")
    expect(page.locator(".stat").filter(has_text="Cost")).to_contain_text("each hour at its own rate")
    screenshot(page, "client-device-tariff-costs")
