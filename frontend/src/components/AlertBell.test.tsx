import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Alert } from "../api/types";
import { mergeAlerts, unreadCount } from "../state/alerts";
import { fakeFetch, signIn } from "../test/fakeApi";
import { FakeSocket } from "../test/fakeSocket";
import { renderInApp } from "../test/renderInApp";
import { AlertBell } from "./AlertBell";
import { Toasts } from "./Toasts";

function alert(id: string, acknowledged: boolean, created = "2026-11-23T10:00:00Z"): Alert {
  return {
    id, kind: "over_consumption", device_id: "m1", device_name: "Alice's house", hour_start: "2026-11-23T10:00:00Z",
    total_kwh: 3.2, max_hourly_kwh: 2, created_at: created, acknowledged_at: acknowledged ? "2026-11-23T11:00:00Z" : null,
  };
}

describe("alert counting", () => {
  it("counts unacknowledged alerts and keeps a local acknowledgement over a stale copy", () => {
    const acked = { ...alert("a", true) };
    const merged = mergeAlerts([acked, alert("b", false)], [alert("a", false), alert("c", false, "2026-11-23T12:00:00Z")]);
    expect(unreadCount(merged)).toBe(2);
    expect(merged.map((a) => a.id)).toEqual(["c", "b", "a"]);
  });
});

describe("AlertBell", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.stubGlobal("WebSocket", FakeSocket);
    signIn();
  });
  afterEach(() => vi.unstubAllGlobals());

  function setup(initial: Alert[]) {
    let stored = initial;
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: { id: "u1", username: "alice", role: "client", name: "Alice", email: null } }),
      "GET /alerts": () => ({ body: { items: stored, next_cursor: null } }),
      "POST /alerts/a2/ack": () => {
        stored = stored.map((a) => (a.id === "a2" ? { ...a, acknowledged_at: "2026-11-23T12:00:00Z" } : a));
        return { body: stored.find((a) => a.id === "a2") };
      },
    });
    vi.stubGlobal("fetch", api.fn);
    renderInApp(
      <>
        <AlertBell />
        <Toasts />
      </>,
    );
    return api;
  }

  it("shows the number of unacknowledged alerts", async () => {
    setup([alert("a1", true), alert("a2", false), alert("a3", false)]);
    expect(await screen.findByTestId("alert-count")).toHaveTextContent("2");
    expect(screen.getByRole("button", { name: "Alerts: 2 unread alerts" })).toBeInTheDocument();
  });

  it("counts an alert pushed over the socket once, and toasts it", async () => {
    setup([alert("a2", false)]);
    expect(await screen.findByTestId("alert-count")).toHaveTextContent("1");
    act(() => FakeSocket.latest().open());
    act(() => FakeSocket.latest().push({ type: "alert", alert: alert("a9", false) }));
    expect(screen.getByTestId("alert-count")).toHaveTextContent("2");
    act(() => FakeSocket.latest().push({ type: "alert", alert: alert("a9", false) }));
    expect(screen.getByTestId("alert-count")).toHaveTextContent("2");
    expect(screen.getAllByRole("alert").filter((el) => el.classList.contains("toast"))).toHaveLength(1);
  });

  it("acknowledges from the list and lowers the count", async () => {
    const api = setup([alert("a1", false, "2026-11-23T09:00:00Z"), alert("a2", false)]);
    const user = userEvent.setup();
    expect(await screen.findByTestId("alert-count")).toHaveTextContent("2");
    await user.click(screen.getByRole("button", { name: /Alerts:/ }));
    const panel = screen.getByRole("dialog", { name: "Alerts" });
    const buttons = within(panel).getAllByRole("button", { name: "Acknowledge" });
    await user.click(buttons[0]);
    await waitFor(() => expect(screen.getByTestId("alert-count")).toHaveTextContent("1"));
    expect(api.calls.some((c) => c.method === "POST" && c.path === "/alerts/a2/ack")).toBe(true);
  });

  it("fetches missed alerts after the socket reconnects", async () => {
    const api = setup([]);
    await waitFor(() => expect(api.calls.filter((c) => c.path === "/alerts")).toHaveLength(1));
    expect(screen.queryByTestId("alert-count")).toBeNull();
    act(() => FakeSocket.latest().open());
    act(() => FakeSocket.latest().drop());
    await act(async () => {
      await new Promise((r) => setTimeout(r, 1300));
    });
    act(() => FakeSocket.latest().open());
    await waitFor(() => expect(api.calls.filter((c) => c.path === "/alerts")).toHaveLength(2));
  });
});
