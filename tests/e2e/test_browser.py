"""The browser application against the real local runtime, as admins and clients use it."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, Backend, Browsers, screenshot, sign_in


def hour_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def device_count(backend: Backend) -> int:
    """The fleet's size as the devices route lists it, page by page."""
    admin = backend.login("admin", "admin123")
    count, cursor = 0, ""
    while True:
        page = backend.call("GET", f"/devices?limit=500{f'&cursor={quote(cursor)}' if cursor else ''}", admin).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


def stat(page: Page, name: str) -> int:
    return int(page.get_by_test_id(f"fleet-{name}").locator(".stat-value").inner_text().replace(",", ""))


def open_device(page: Page, name: str) -> None:
    page.get_by_role("link", name=name).first.click()
    page.wait_for_url(re.compile(r"/devices/"))
    expect(page.locator(".chart canvas").first).to_be_visible()


def test_an_admin_creates_a_device_for_a_client_who_sees_its_day_chart(backend: Backend, browsers: Browsers) -> None:
    client = backend.create_client("carol")
    admin = browsers.signed_in("admin", "admin123")
    expect(admin.get_by_role("heading", name="Fleet")).to_be_visible()

    admin.get_by_role("link", name="New device").click()
    admin.get_by_label("Name", exact=True).fill("Carol's flat")
    admin.get_by_label("Limit per hour (kWh)").fill("5")
    admin.get_by_label("Time zone").fill("UTC")
    admin.get_by_label("Tariff per kWh").fill("0.3")
    admin.get_by_label("Currency").fill("eur")
    admin.get_by_placeholder("Find users").fill(client.username)
    admin.get_by_label(re.compile(client.username)).check()
    admin.get_by_label("Name", exact=True).press("Enter")  # Enter submits the form
    expect(admin.get_by_role("heading", name="Edit Carol's flat")).to_be_visible()
    device_id = admin.url.rsplit("/", 1)[1]
    expect(admin.get_by_label(re.compile(client.username))).to_be_checked()

    admin.get_by_role("button", name="Create API key").click()
    expect(admin.get_by_test_id("new-api-key")).to_have_text(re.compile(r"\S{16,}"))
    screenshot(admin, "admin-device-edit")

    device = backend.call("GET", f"/devices/{device_id}", backend.login("admin", "admin123")).json()
    assert device["owner_ids"] == [client.id]
    assert device["currency"] == "EUR" and device["max_hourly_kwh"] == 5

    # Two readings in the current hour; every other hour of the day stays missing.
    backend.wait_for_meter(device_id)
    now = dt.datetime.now(dt.UTC)
    start = hour_start(now)
    backend.send_readings(device_id, [(start, 0.4), (start + dt.timedelta(seconds=(now - start).seconds // 2), 0.35)])

    page = browsers.signed_in(client.username, client.password)
    expect(page.get_by_role("heading", name="My devices")).to_be_visible()
    expect(page.get_by_role("link", name="Carol's flat")).to_be_visible()
    screenshot(page, "client-my-devices")
    open_device(page, "Carol's flat")
    expect(page.get_by_role("heading", name="Carol's flat")).to_be_visible()
    expect(page.get_by_role("textbox", name="Day")).to_have_value(now.date().isoformat())

    # The readings arrive through the queue; the page follows them live or on reload.
    expect(page.get_by_test_id("day-total")).to_have_text(re.compile(r"0\.75"), timeout=30_000)
    page.get_by_text("Show the hours as a table").click()
    rows = page.locator(".hour-table tbody tr")
    expect(rows).to_have_count(24)
    expect(page.locator(".hour-table tr.missing")).to_have_count(23)
    expect(page.locator(".chart-legend-note").first).to_contain_text("no reading in that hour (23 of 24)")
    screenshot(page, "client-device-day")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = download.value.path()
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "hour_start_local,hour_start_utc,kwh,readings,price_per_kwh,cost,currency"
    assert any(",0.75,2," in line for line in lines[1:]), lines[-30:]

    # Another day through the date input: nothing was sent then, so every hour is missing.
    page.get_by_role("textbox", name="Day").fill((now.date() - dt.timedelta(days=3)).isoformat())
    expect(page.get_by_test_id("day-total")).to_have_text(re.compile(r"^0 kWh"))
    expect(page.locator(".hour-table tr.missing")).to_have_count(24)

    phone = browsers.signed_in(client.username, client.password, viewport=PHONE)
    phone.goto(f"/devices/{device_id}")
    expect(phone.locator(".chart canvas").first).to_be_visible()
    screenshot(phone, "client-device-phone")


def test_readings_over_the_limit_raise_an_alert_toast(backend: Backend, browsers: Browsers) -> None:
    client = backend.create_client("dana")
    device_id = backend.create_device([client], limit=0.5, name="Dana's heat pump")
    page = browsers.signed_in(client.username, client.password)
    open_device(page, "Dana's heat pump")
    expect(page.locator(".bell .badge")).to_have_count(0)

    now = dt.datetime.now(dt.UTC)
    start = hour_start(now)
    backend.send_readings(device_id, [(start + dt.timedelta(seconds=i), 0.3) for i in range(3)])

    toast = page.locator(".toast").filter(has_text="Dana's heat pump")
    expect(toast).to_be_visible(timeout=30_000)
    expect(toast).to_contain_text("Over the hourly limit")
    expect(page.get_by_test_id("alert-count")).to_have_text("1")
    expect(page.get_by_test_id("day-total")).to_have_text(re.compile(r"0\.9"), timeout=30_000)
    screenshot(page, "client-alert-toast", full_page=False)

    toast.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-count")).to_have_count(0)
    page.get_by_role("link", name="Alerts", exact=True).click()
    row = page.locator(".alerts-table tbody tr").filter(has_text="Dana's heat pump")
    expect(row).to_contain_text("Acknowledged")
    screenshot(page, "client-alerts")

    alerts = backend.call("GET", "/alerts", backend.login(client.username, client.password)).json()["items"]
    assert [a["device_id"] for a in alerts] == [device_id] and alerts[0]["acknowledged_at"]


def test_a_chat_question_gets_a_rule_answer_then_an_admin_takes_over(backend: Backend, browsers: Browsers) -> None:
    client = backend.create_client("erin")
    page = browsers.signed_in(client.username, client.password)
    page.get_by_role("button", name="Chat").click()
    page.get_by_role("textbox", name="Message").fill("How do I read the chart?")
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator(".chat-message[data-kind='client']")).to_contain_text("How do I read the chart?")
    expect(page.locator(".chat-message[data-kind='rule']")).to_contain_text("The day chart shows", timeout=30_000)
    screenshot(page, "client-chat-rule", full_page=False)

    admin = browsers.signed_in("admin", "admin123")
    admin.get_by_role("link", name=re.compile("^Chat")).click()
    conversation = admin.locator("button.conversation").filter(has_text=re.compile(f"Erin {client.username[-6:]}"))
    conversation.click()
    expect(admin.locator(".conversation-view .chat-message[data-kind='rule']")).to_contain_text("The day chart shows")
    admin.get_by_role("button", name="Take over").click()
    expect(admin.get_by_test_id("conversation-status")).to_contain_text("Taken over")
    expect(page.get_by_test_id("chat-status")).to_have_text("A person from support is here")

    reply = admin.locator(".conversation-view").get_by_role("textbox", name="Message")
    reply.press_sequentially("Hello, this is support", delay=20)
    expect(page.locator(".chat-typing")).to_contain_text("Support is typing")
    reply.press("Enter")
    expect(page.locator(".chat-message[data-kind='admin']")).to_contain_text("Hello, this is support")
    # The client has the chat open, so the reply is read, and the admin sees it.
    expect(admin.locator(".conversation-view .chat-read")).to_be_visible()
    screenshot(admin, "admin-chat-console")
    screenshot(page, "client-chat-admin-reply", full_page=False)


def test_admin_screens_users_and_api_documentation(backend: Backend, browsers: Browsers) -> None:
    # Two meters whose names share a prefix no other has: typing it (in any case) leaves just them.
    prefix = f"Fleet {uuid.uuid4().hex[:6]}"
    for side in ("north", "south"):
        backend.create_device([], limit=1, name=f"{prefix} {side}")
    devices = device_count(backend)

    admin = browsers.page()
    api_calls: list[str] = []
    admin.on("request", lambda request: api_calls.append(request.url) if "/api/" in request.url else None)
    sign_in(admin, "admin", "admin123")
    expect(admin.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(admin.get_by_test_id("fleet-devices").locator(".stat-value")).to_have_text(f"{devices:,}")
    states = [stat(admin, s) for s in ("reporting", "over_limit", "silent", "never_reported")]
    assert sum(states) == devices and states[3] >= 2, states
    rows = admin.locator(".fleet-table tbody tr")
    expect(rows.first).to_be_visible()
    screenshot(admin, "admin-fleet")
    # The first screen is one fleet request, whatever the fleet's size: nothing asked device by device.
    fleet_calls = [url for url in api_calls if "/api/fleet" in url]
    assert 1 <= len(fleet_calls) <= 2, fleet_calls
    assert not [url for url in api_calls if "/consumption" in url or "/readings" in url], api_calls

    admin.get_by_label("Search", exact=True).fill(prefix.lower())
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"{prefix} north")
    expect(rows.nth(1)).to_contain_text(f"{prefix} south")
    expect(rows.nth(0)).to_contain_text("Never reported")
    admin.get_by_label("State").select_option("reporting")
    expect(admin.locator(".card.empty")).to_contain_text("No devices match")
    expect(rows).to_have_count(0)
    admin.get_by_label("State").select_option("never_reported")
    expect(rows).to_have_count(2)
    admin.get_by_label("Search", exact=True).fill("")
    admin.get_by_label("State").select_option("")
    expect(rows).to_have_count(min(devices, 50))
    # The counts are the fleet's, whatever the filter.
    expect(admin.get_by_test_id("fleet-devices").locator(".stat-value")).to_have_text(f"{devices:,}")

    # Other tests make users too (alice_…): a username prefix only this test's user has leaves just it.
    sought = backend.create_client(f"seek{uuid.uuid4().hex[:4]}_")
    admin.get_by_role("link", name="Users").click()
    admin.get_by_label("Search").fill(sought.username[:10].upper())
    expect(admin.locator(".users-table tbody tr")).to_have_count(1)
    expect(admin.locator(".users-table tbody tr")).to_contain_text(sought.username)
    admin.get_by_label("Search").fill("")

    admin.get_by_role("button", name="New user").click()
    admin.get_by_label("Username").fill("x")
    admin.get_by_label("Password").fill("short")
    admin.get_by_role("button", name="Create user").click()
    error = admin.locator(".error-box")
    expect(error).to_contain_text("username:")
    expect(error).to_contain_text("password:")
    screenshot(admin, "admin-users-validation")
    admin.get_by_label("Username").fill("frank_e2e")
    admin.get_by_label("Password").fill("frank-password")
    admin.get_by_label("Name", exact=True).fill("Frank Example")
    admin.get_by_label("Password").press("Enter")
    expect(admin.get_by_role("status").filter(has_text="User frank_e2e created.")).to_be_visible()
    row = admin.locator(".users-table tbody tr").filter(has_text="frank_e2e")
    row.get_by_role("button", name="Edit").click()
    admin.locator("tr.editing").get_by_label("Role").select_option("admin")
    admin.locator("tr.editing").get_by_role("button", name="Save").click()
    expect(admin.locator(".users-table tbody tr").filter(has_text="frank_e2e")).to_contain_text("admin")
    row = admin.locator(".users-table tbody tr").filter(has_text="frank_e2e")
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Yes, delete").click()
    expect(admin.locator(".users-table tbody tr").filter(has_text="frank_e2e")).to_have_count(0)

    admin.get_by_role("link", name="Devices", exact=True).click()
    expect(admin.get_by_role("heading", name="Devices")).to_be_visible()
    screenshot(admin, "admin-devices")

    admin.get_by_role("link", name="API docs").click()
    expect(admin.locator(".operation").filter(has_text="/devices/{device_id}/consumption").first).to_be_visible()
    admin.locator(".operation summary").filter(has_text="/auth/login").click()
    expect(admin.locator(".operation").filter(has_text="/auth/login")).to_contain_text("LoginRequest")
    screenshot(admin, "admin-api-docs")

    admin.get_by_role("link", name="Alerts", exact=True).click()
    expect(admin.get_by_role("heading", name="Alerts")).to_be_visible()
    screenshot(admin, "admin-alerts")

    phone = browsers.signed_in("admin", "admin123", viewport={"width": 390, "height": 844})
    phone.get_by_role("button", name="Menu").click()
    expect(phone.get_by_role("link", name="Users")).to_be_visible()
    screenshot(phone, "admin-fleet-phone", full_page=False)


def test_sign_in_register_profile_and_session_expiry(backend: Backend, browsers: Browsers) -> None:
    page = browsers.page()
    page.goto("/login")
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("The username or password is wrong.")

    page.get_by_role("link", name="Register").click()
    page.get_by_label("Username").fill("g")
    page.get_by_label("Password", exact=True).fill("grace-password")
    page.get_by_label("Repeat the password").fill("grace-password")
    page.get_by_label("Repeat the password").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("username:")
    screenshot(page, "register-validation")
    page.get_by_label("Username").fill("grace_e2e")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile("/login"))
    expect(page.get_by_label("Username")).to_have_value("grace_e2e")
    page.get_by_label("Password").fill("grace-password")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="My devices")).to_be_visible()
    expect(page.get_by_text("No devices yet")).to_be_visible()

    page.get_by_role("link", name="Profile").click()
    page.get_by_label("Name", exact=True).fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator(".whoami")).to_have_text("Grace Hopper")
    page.get_by_label("Current password").fill("grace-password")
    page.get_by_label("New password", exact=True).fill("grace-password-2")
    page.get_by_label("Repeat the new password").fill("grace-password-2")
    page.get_by_label("Repeat the new password").press("Enter")
    expect(page.get_by_role("status").filter(has_text="Password changed")).to_be_visible()
    screenshot(page, "profile")

    # Another session of the same user signs out everywhere: this page's next call gets 401.
    other = backend.login("grace_e2e", "grace-password-2")
    assert backend.call("POST", "/auth/logout", other).status_code == 204
    page.get_by_role("link", name="My devices").click()
    expect(page.get_by_test_id("auth-notice")).to_have_text(re.compile("Your session has expired"))
    expect(page).to_have_url(re.compile("/login"))
    screenshot(page, "session-expired")

    page.get_by_label("Username").fill("grace_e2e")
    page.get_by_label("Password").fill("grace-password-2")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="My devices")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("auth-notice")).to_contain_text("You have signed out.")
