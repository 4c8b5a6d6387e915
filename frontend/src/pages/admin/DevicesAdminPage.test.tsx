import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Device } from "../../api/types";
import { fakeFetch, signIn } from "../../test/fakeApi";
import { FakeSocket } from "../../test/fakeSocket";
import { renderInApp } from "../../test/renderInApp";
import DevicesAdminPage from "./DevicesAdminPage";

const ADMIN = { id: "a1", username: "admin", role: "admin", name: "Admin", email: null };
const HEADER = "serial,name,address,max_hourly_kwh,timezone,owners";

function device(id: string, name: string, serial: string | null): Device {
  return {
    id, serial, name, description: "", address: "", max_hourly_kwh: 1, timezone: "UTC", tariff_per_kwh: null,
    currency: null, tariffs: [], reading_kind: "interval", register_max_kwh: null, owner_ids: [],
    created_at: "2026-12-01T00:00:00+00:00",
  };
}

describe("DevicesAdminPage import", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.stubGlobal("WebSocket", FakeSocket);
    signIn(ADMIN);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("sends the chosen file as CSV and shows what each row became, then lists the devices again", async () => {
    let listed: Device[] = [];
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: ADMIN }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /users": () => ({ body: { items: [], next_cursor: null } }),
      "GET /devices": () => ({ body: { items: listed, next_cursor: null } }),
      "POST /devices/import": () => {
        listed = [device("d1", "Kitchen", "SN-1")];
        return {
          body: {
            created: [{ row: 1, serial: "SN-1", device_id: "d1" }], updated: [], unchanged: [],
            rejected: [{ row: 2, serial: "SN-2", problems: [{ field: "name", message: "looks like a formula (starts with '=')" }] }],
          },
        };
      },
    });
    vi.stubGlobal("fetch", api.fn);
    renderInApp(<DevicesAdminPage />);
    const user = userEvent.setup();
    expect(await screen.findByText("No devices yet.")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Import CSV" }));
    const text = `${HEADER}\nSN-1,Kitchen,,1,,\nSN-2,=1+2,,1,,\n`;
    await user.upload(screen.getByLabelText("CSV file"), new File([text], "meters.csv", { type: "text/csv" }));
    await user.click(screen.getByRole("button", { name: "Import" }));

    expect(await screen.findByTestId("import-summary")).toHaveTextContent("1 created, 0 updated, 0 unchanged, 1 rejected.");
    const rejected = within(screen.getByRole("table", { name: /Rejected rows/ })).getAllByRole("row").slice(1);
    expect(rejected.map((r) => r.textContent)).toEqual(["2SN-2name: looks like a formula (starts with '=')"]);
    const sent = api.calls.find((c) => c.path === "/devices/import");
    expect(sent?.headers["Content-Type"]).toBe("text/csv");
    expect(sent?.body).toBe(text);
    expect(await screen.findByRole("link", { name: "Kitchen" })).toBeInTheDocument();
    expect(screen.getByText("SN-1 · d1")).toBeInTheDocument();
  });

  it("lists a page at a time by name, loads more on demand and searches by name prefix", async () => {
    const queries: URLSearchParams[] = [];
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: ADMIN }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /devices": ({ url }) => {
        queries.push(url.searchParams);
        if (url.searchParams.get("q")) return { body: { items: [device("d9", "Zeta", null)], next_cursor: null } };
        return url.searchParams.get("cursor")
          ? { body: { items: [device("d2", "Beta", null)], next_cursor: null } }
          : { body: { items: [device("d1", "Alpha", "SN-1")], next_cursor: "c1" } };
      },
    });
    vi.stubGlobal("fetch", api.fn);
    renderInApp(<DevicesAdminPage />);
    const user = userEvent.setup();
    expect(await screen.findByRole("link", { name: "Alpha" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByRole("link", { name: "Beta" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();
    expect(queries.map((q) => [q.get("limit"), q.get("cursor")])).toEqual([["50", null], ["50", "c1"]]);

    await user.type(screen.getByLabelText("Search"), "ze");
    expect(await screen.findByRole("link", { name: "Zeta" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Alpha" })).not.toBeInTheDocument();
    expect(queries.at(-1)?.get("q")).toBe("ze");
  });

  it("shows the API's error when it refuses the file", async () => {
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: ADMIN }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /users": () => ({ body: { items: [], next_cursor: null } }),
      "GET /devices": () => ({ body: { items: [], next_cursor: null } }),
      "POST /devices/import": () => ({
        status: 422,
        body: { error: { code: "validation_error", message: "The header must name the columns serial,name,address,max_hourly_kwh,timezone,owners.", details: [{ field: "header", message: "unknown column 'id'" }] } },
      }),
    });
    vi.stubGlobal("fetch", api.fn);
    renderInApp(<DevicesAdminPage />);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Import CSV" }));
    await user.upload(screen.getByLabelText("CSV file"), new File(["id,name\n1,a\n"], "bad.csv", { type: "text/csv" }));
    await user.click(screen.getByRole("button", { name: "Import" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The header must name the columns");
    expect(alert).toHaveTextContent("header: unknown column 'id'");
  });
});
