"""End-to-end fixtures: the real local runtime serving the built frontend, and headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.harness import FAST_HASHING, PROJECT_DIR, RuntimeProcess, wait_for

FRONTEND_DIST = PROJECT_DIR / "frontend" / "dist"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
DEADLINE_S = 30.0


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password: str
    token: str


class Backend:
    """The running product, reached the way outside programs reach it: REST and the readings queue."""

    def __init__(self, runtime: RuntimeProcess) -> None:
        self.runtime = runtime
        # The page is loaded from the host the runtime config names, so the API is same-origin.
        self.base_url = f"http://localhost:{runtime.rest_port}"
        self.api_url = f"{self.base_url}/api"

    def login(self, username: str, password: str) -> Account:
        response = requests.post(f"{self.api_url}/auth/login", json={"username": username, "password": password},
                                 timeout=DEADLINE_S)
        assert response.status_code == 200, response.text
        body = response.json()
        return Account(body["user"]["id"], username, password, body["access_token"])

    def call(self, method: str, path: str, account: Account, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.api_url}{path}", json=body, timeout=DEADLINE_S,
                                headers={"Authorization": f"Bearer {account.token}"})

    def create_client(self, prefix: str = "client") -> Account:
        admin = self.login("admin", "admin123")
        username = f"{prefix}{uuid.uuid4().hex[:6]}"
        password = f"pw-{uuid.uuid4().hex[:10]}"
        response = self.call("POST", "/users", admin, {"username": username, "password": password, "role": "client",
                                                        "name": f"{prefix.title()} {username[-6:]}"})
        assert response.status_code == 201, response.text
        return self.login(username, password)

    def create_device(self, owners: list[Account], limit: float, name: str | None = None,
                      timezone: str = "UTC", tariff: float | None = 0.25) -> str:
        admin = self.login("admin", "admin123")
        device_id = f"e2e-{uuid.uuid4().hex[:8]}"
        body: dict[str, Any] = {"id": device_id, "name": name or f"Meter {device_id}", "max_hourly_kwh": limit,
                                "timezone": timezone, "owner_ids": [o.id for o in owners]}
        if tariff is not None:
            body.update(tariff_per_kwh=tariff, currency="EUR")
        response = self.call("POST", "/devices", admin, body)
        assert response.status_code == 201, response.text
        self.wait_for_meter(device_id)
        return device_id

    def wait_for_meter(self, device_id: str) -> None:
        """Readings count once monitoring's replica knows the device."""
        dynamodb = self.runtime.client("dynamodb")
        wait_for(lambda: dynamodb.get_item(TableName=self.runtime.name("meters"),
                                           Key={"device_id": {"S": device_id}}, ConsistentRead=True).get("Item"),
                 timeout_s=DEADLINE_S, what=f"device {device_id} in monitoring's replica")

    def send_readings(self, device_id: str, readings: list[tuple[dt.datetime, float]]) -> None:
        """Readings as a meter sends them: one JSON message each on the readings queue."""
        sqs = self.runtime.client("sqs")
        url = self.runtime.queue_url("readings")
        messages = [{"timestamp": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "device_id": device_id,
                     "measurement_value": kwh} for at, kwh in readings]
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(messages[start:start + 10])]
            assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if not (FRONTEND_DIST / "index.html").is_file():
        pytest.fail("frontend/dist is not built: run `make frontend-build` (make test does it)")
    process = RuntimeProcess(
        tmp_path_factory.mktemp("e2e"),
        extra_args=[
            "--frontend-dir", str(FRONTEND_DIST),
            "--demo", "--no-simulator",
            "--visibility-timeout", "1",
            "--max-receive-count", "3",
            "--log-format", "json",
        ],
        env=FAST_HASHING,
    ).start()
    yield Backend(process)
    assert process.stop() == 0, process.output


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (make test does it)")
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


class Browsers:
    """Fresh browser contexts (separate sessions), closed at the end of the test."""

    def __init__(self, browser: Browser, backend: Backend) -> None:
        self.browser = browser
        self.backend = backend
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def page(self, viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(base_url=self.backend.base_url, viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(DEADLINE_S * 1000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def signed_in(self, username: str, password: str, viewport: dict[str, int] | None = None) -> Page:
        page = self.page(viewport)
        sign_in(page, username, password)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsers(browser: Browser, backend: Backend) -> Iterator[Browsers]:
    opened = Browsers(browser, backend)
    yield opened
    opened.close()
    assert not opened.errors, f"uncaught errors in the page: {opened.errors}"


def sign_in(page: Page, username: str, password: str) -> None:
    """Signs in as a person would: the form, then Enter."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    page.locator(".status-light[data-status='open']").wait_for()


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.wait_for_function("!document.querySelector('.loading')")
    page.screenshot(path=str(path), full_page=full_page)
    return path
