import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FleetRow, FleetSummary } from "../../api/types";
import { fakeFetch, signIn } from "../../test/fakeApi";
import { FakeSocket } from "../../test/fakeSocket";
import { renderInApp } from "../../test/renderInApp";
import FleetPage from "./FleetPage";

const ADMIN = { id: "a1", username: "admin", role: "admin", name: "Admin", email: null };
const SUMMARY: FleetSummary = { devices: 3000, reporting: 2990, over_limit: 4, silent: 3, never_reported: 3, open_alerts: 7 };

function row(id: string, name: string, state: FleetRow["state"] = "reporting"): FleetRow {
  return {
    device_id: id, name, state, last_reading_at: state === "never_reported" ? null : "2026-11-23T10:05:00Z",
    hour_kwh: state === "never_reported" ? null : 0.4, today_kwh: state === "never_reported" ? null : 5.25,
    today_cost: state === "never_reported" ? null : 1.31, currency: state === "never_reported" ? null : "EUR",
    max_hourly_kwh: 2, open_alerts: state === "over_limit" ? 2 : 0,
  };
}

function setup(pages: (query: URLSearchParams) => { items: FleetRow[]; next_cursor: string | null }, summary = () => SUMMARY) {
  const queries: URLSearchParams[] = [];
  const api = fakeFetch({
    "GET /auth/me": () => ({ body: ADMIN }),
    "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
    "GET /fleet": ({ url }) => {
      queries.push(url.searchParams);
      return { body: { summary: summary(), ...pages(url.searchParams) } };
    },
  });
  vi.stubGlobal("fetch", api.fn);
  renderInApp(<FleetPage />);
  return { api, queries, fleetCalls: () => api.calls.filter((c) => c.path === "/fleet") };
}

const sleep = (ms: number) => act(() => new Promise<void>((resolve) => setTimeout(resolve, ms)));

describe("FleetPage", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.stubGlobal("WebSocket", FakeSocket);
    signIn(ADMIN);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("shows the fleet's counts and its first rows from one request", async () => {
    const { fleetCalls, queries } = setup(() => ({
      items: [row("m1", "Bakery", "over_limit"), row("m2", "Clinic", "silent"), row("m3", "Depot", "never_reported")],
      next_cursor: "reporting.abc",
    }));
    expect(await screen.findByRole("link", { name: "Bakery" })).toHaveAttribute("href", "/devices/m1");
    expect(screen.getByTestId("fleet-devices")).toHaveTextContent("3,000");
    expect(screen.getByTestId("fleet-reporting")).toHaveTextContent("2,990");
    expect(screen.getByTestId("fleet-over_limit")).toHaveTextContent("4");
    expect(screen.getByTestId("fleet-silent")).toHaveTextContent("3");
    expect(screen.getByTestId("fleet-never_reported")).toHaveTextContent("3");
    expect(screen.getByTestId("fleet-open_alerts")).toHaveTextContent("7");

    const rows = screen.getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-state"))).toEqual(["over_limit", "silent", "never_reported"]);
    expect(within(rows[0]).getByText("Over limit")).toBeInTheDocument();
    expect(within(rows[0]).getByRole("link", { name: "2" })).toHaveAttribute("href", "/alerts");
    expect(within(rows[0]).getByText("5.25 kWh")).toBeInTheDocument();
    expect(within(rows[0]).getByTestId("today-cost")).toHaveTextContent(/1\.31/);
    expect(within(rows[2]).queryByTestId("today-cost")).toBeNull();
    expect(within(rows[2]).getByText("never")).toBeInTheDocument();
    expect(within(rows[2]).getByText("no readings")).toBeInTheDocument();

    await sleep(400);
    expect(fleetCalls()).toHaveLength(1);
    expect(queries[0].get("limit")).toBe("50");
    expect(queries[0].has("cursor") || queries[0].has("state") || queries[0].has("q")).toBe(false);
  });

  it("appends the next page with its cursor on Load more", async () => {
    const { queries } = setup((query) =>
      query.get("cursor") === "reporting.abc"
        ? { items: [row("m3", "Depot")], next_cursor: null }
        : { items: [row("m1", "Bakery"), row("m2", "Clinic")], next_cursor: "reporting.abc" },
    );
    const user = userEvent.setup();
    await screen.findByRole("link", { name: "Bakery" });
    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByRole("link", { name: "Depot" })).toBeInTheDocument();
    expect(screen.getAllByRole("row").slice(1).map((r) => r.getAttribute("data-device-id"))).toEqual(["m1", "m2", "m3"]);
    expect(queries).toHaveLength(2);
    expect(queries[1].get("cursor")).toBe("reporting.abc");
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
  });

  it("starts the list again with the state filter and the name search", async () => {
    const { queries } = setup((query) => {
      const q = query.get("q");
      const state = query.get("state");
      const all = [row("m1", "Bakery", "silent"), row("m2", "Bank", "reporting"), row("m3", "Clinic", "reporting")];
      return {
        items: all.filter((r) => (!state || r.state === state) && (!q || r.name.toLowerCase().startsWith(q.toLowerCase()))),
        next_cursor: null,
      };
    });
    const user = userEvent.setup();
    await screen.findByRole("link", { name: "Clinic" });

    await user.selectOptions(screen.getByLabelText("State"), "reporting");
    expect(await screen.findByRole("link", { name: "Clinic" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Bakery" })).toBeNull();
    expect(queries).toHaveLength(2);
    expect(queries[1].get("state")).toBe("reporting");
    expect(queries[1].has("cursor")).toBe(false);

    await user.type(screen.getByLabelText("Search"), "ba");
    await waitFor(() => {
      expect(screen.queryByRole("link", { name: "Clinic" })).toBeNull();
      expect(screen.getByRole("link", { name: "Bank" })).toBeInTheDocument();
    });
    // Debounced: one request for the whole word, with both filters.
    expect(queries).toHaveLength(3);
    expect(queries[2].get("q")).toBe("ba");
    expect(queries[2].get("state")).toBe("reporting");

    await user.selectOptions(screen.getByLabelText("State"), "");
    expect(await screen.findByRole("link", { name: "Bakery" })).toBeInTheDocument();
    expect(queries[3].get("q")).toBe("ba");
    expect(queries[3].has("state")).toBe(false);
  });

  it("refreshes the first page once for a burst of live alerts", async () => {
    let live = false;
    const { fleetCalls } = setup(
      () => ({ items: [row("m1", "Bakery", live ? "over_limit" : "reporting")], next_cursor: null }),
      () => ({ ...SUMMARY, open_alerts: live ? 9 : 7 }),
    );
    await screen.findByRole("link", { name: "Bakery" });
    expect(screen.getByTestId("fleet-open_alerts")).toHaveTextContent("7");
    act(() => FakeSocket.latest().open());

    live = true;
    const alert = (id: string) => ({
      id, kind: "over_consumption", device_id: "m1", device_name: "Bakery", hour_start: "2026-11-23T10:00:00Z",
      total_kwh: 3.2, max_hourly_kwh: 2, created_at: "2026-11-23T10:30:00Z", acknowledged_at: null,
    });
    act(() => {
      FakeSocket.latest().push({ type: "alert", alert: alert("m1:1") });
      FakeSocket.latest().push({ type: "alert", alert: alert("m1:2") });
    });
    await waitFor(() => expect(screen.getByTestId("fleet-open_alerts")).toHaveTextContent("9"), { timeout: 3000 });
    expect(screen.getByText("Over limit")).toBeInTheDocument();
    await sleep(500);
    expect(fleetCalls()).toHaveLength(2);
  });
});
