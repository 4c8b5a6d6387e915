"""The fleet page in headless Chromium, as an admin opens it: the time until its first screen and
cards are complete, and the `/api/` requests it made until then.

The runtime serves the built frontend (`BenchRuntime.serve_frontend`); the browser is Debian's
Chromium, launched and signed in as the end-to-end tests do (`tests/e2e/conftest.py`). The admin
signs in through the login page once, then opens `/admin` again `loads` times. Each load is timed
from the navigation's start (`performance.now()` in the page) until the fleet table's first row is
on the screen, the devices card shows the whole fleet and the four state cards have their counts,
checked on every frame. The requests are counted by a wrapper around `fetch`, installed before the
app's own script runs, so that only those started until that moment count.
"""

from __future__ import annotations

import statistics
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from bench.runtime import PASSWORD, Account, BenchError, BenchRuntime
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, sign_in

STATES = ("reporting", "over_limit", "silent", "never_reported")
TIMEOUT_S = 120.0

# Runs before the app's script in every document: the path of each /api/ request the page starts.
RECORD_API = """
(() => {
  const started = [];
  Object.defineProperty(window, "__apiRequests", { value: started });
  const send = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (url.pathname.startsWith("/api/")) started.push(url.pathname);
    return send(input, init);
  };
})();
"""

# Null until the first screen and the cards are complete; then the time and the requests so far.
COMPLETE = """
([devices, states]) => {
  const count = (id) => {
    const text = (document.querySelector(`[data-testid="fleet-${id}"] .stat-value`)?.textContent ?? "").trim();
    return /^[0-9][0-9,]*$/.test(text) ? Number(text.replace(/,/g, "")) : null;
  };
  const row = document.querySelector(".fleet-table tbody tr");
  const onScreen = row !== null && row.checkVisibility() && row.getBoundingClientRect().top < window.innerHeight;
  if (!onScreen || count("devices") !== devices || states.some((state) => count(state) === null)) return null;
  return { ms: performance.now(), requests: [...window.__apiRequests] };
}
"""


def fleet_page_loads(runtime: BenchRuntime, admin: Account, devices: int, loads: int) -> dict[str, Any]:
    """`loads` openings of the fleet page by a signed-in admin, until its cards show `devices`
    meters: the median and each load's milliseconds, and the most `/api/` requests (all, and to
    `/api/fleet`) any load made until then."""
    if not CHROMIUM.exists():
        raise BenchError(f"{CHROMIUM} is missing: run `make chromium` (make bench does it)")
    runtime.serve_frontend()
    page_errors: list[str] = []
    samples: list[dict[str, Any]] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=runtime.base_url, locale="en-US",
                                          viewport={"width": DESKTOP["width"], "height": DESKTOP["height"]})
            context.set_default_timeout(TIMEOUT_S * 1000)
            context.add_init_script(RECORD_API)
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            sign_in(page, admin.username, PASSWORD)
            for _load in range(loads):
                page.goto("/admin", wait_until="commit")
                done = page.wait_for_function(COMPLETE, arg=[devices, list(STATES)], polling="raf").json_value()
                paths = [str(path) for path in done["requests"]]
                samples.append({"ms": float(done["ms"]), "api_requests": len(paths),
                                "fleet_requests": sum(1 for path in paths if path.startswith("/api/fleet")),
                                "paths": paths})
        except PlaywrightError as exc:
            raise BenchError(f"the fleet page of {devices:,} meters did not complete: {str(exc)[:500]} "
                             f"(errors in the page: {page_errors[:3]})") from None
        finally:
            browser.close()
    times = [sample["ms"] for sample in samples]
    return {"ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "loads": samples,
            "api_requests": max(sample["api_requests"] for sample in samples),
            "fleet_requests": max(sample["fleet_requests"] for sample in samples), "page_errors": page_errors}
