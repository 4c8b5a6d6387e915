"""Importing meters from a CSV file in the browser, against the real local runtime."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.e2e.conftest import Backend, Browsers, screenshot, sign_in

HEADER = "serial,name,address,max_hourly_kwh,timezone,owners"


def test_an_admin_imports_meters_from_a_csv_file_and_sees_each_rows_outcome(backend: Backend,
                                                                               browsers: Browsers) -> None:
    marker = uuid.uuid4().hex[:6]
    owner = backend.create_client("csvowner")
    text = "\n".join([
        HEADER,
        f'CSV-{marker}-1,Imported {marker} kitchen,"Main St 1, 2nd floor",2.5,Europe/Bucharest,{owner.username}',
        f"CSV-{marker}-2,Imported {marker} garage,,1,,",
        f"CSV-{marker}-3,=HYPERLINK(\"http://example.com\"),,1,,",
        f"CSV-{marker}-4,Imported {marker} shed,,1,,nobody_{marker}",
    ]) + "\n"

    admin = browsers.page()
    sign_in(admin, "admin", "admin123")
    admin.get_by_role("link", name="Devices", exact=True).click()
    admin.get_by_role("button", name="Import CSV").click()
    admin.get_by_label("CSV file").set_input_files(files=[
        {"name": "meters.csv", "mimeType": "text/csv", "buffer": text.encode()}])
    admin.get_by_role("button", name="Import", exact=True).click()

    expect(admin.get_by_test_id("import-summary")).to_have_text("2 created, 0 updated, 0 unchanged, 2 rejected.")
    rejected = admin.locator(".import-rejections tbody tr")
    expect(rejected).to_have_count(2)
    expect(rejected.nth(0)).to_contain_text("name: looks like a formula")
    expect(rejected.nth(1)).to_contain_text(f"owners: no such user: nobody_{marker}")
    # The list is by name, a page at a time: a search finds them among the others.
    admin.get_by_label("Search").fill(f"imported {marker}")
    rows = admin.locator(".devices-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"CSV-{marker}-2")  # garage, then kitchen
    expect(rows.nth(1).get_by_role("link", name=f"Imported {marker} kitchen")).to_be_visible()
    screenshot(admin, "admin-devices-import")

    # The same file again: nothing is created twice.
    admin.get_by_label("CSV file").set_input_files(files=[
        {"name": "meters.csv", "mimeType": "text/csv", "buffer": text.encode()}])
    admin.get_by_role("button", name="Import", exact=True).click()
    expect(admin.get_by_test_id("import-summary")).to_have_text("0 created, 0 updated, 2 unchanged, 2 rejected.")

    # Its owner sees the meter as the import described it.
    client = browsers.signed_in(owner.username, owner.password)
    expect(client.get_by_text(f"Imported {marker} kitchen").first).to_be_visible()
