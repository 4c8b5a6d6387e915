import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Device } from "../../api/types";
import { fakeFetch, signIn } from "../../test/fakeApi";
import { FakeSocket } from "../../test/fakeSocket";
import { renderInApp } from "../../test/renderInApp";
import DeviceEditPage, { deviceChanges } from "./DeviceEditPage";
import { TariffEditor, fromDrafts, sameTariffs, toDrafts, type ShownTariff, type Tariff, type TariffDraft } from "./TariffEditor";

const ISSUE_EXAMPLE: Tariff[] = [
  {
    from: "2026-01-01", currency: "EUR",
    rates: [{ start: "00:00", price_per_kwh: 0.12 }, { start: "17:00", price_per_kwh: 0.35 }, { start: "21:00", price_per_kwh: 0.12 }],
    weekend_rates: [{ start: "00:00", price_per_kwh: 0.1 }],
  },
  { from: "2026-03-01", currency: "EUR", rates: [{ start: "00:00", price_per_kwh: 0.2 }] },
];
const SHOWN: ShownTariff[] = [{ ...ISSUE_EXAMPLE[0], weekend_rates: ISSUE_EXAMPLE[0].weekend_rates ?? null }, { ...ISSUE_EXAMPLE[1], weekend_rates: null }];

/** The editor with its own state, reporting each list it would send. */
function Harness({ initial, sent }: { initial: TariffDraft[]; sent: (tariffs: Tariff[]) => void }) {
  const [drafts, setDrafts] = useState(initial);
  return (
    <TariffEditor
      value={drafts}
      currency="eur"
      onChange={(next) => {
        setDrafts(next);
        sent(fromDrafts(next, "EUR"));
      }}
    />
  );
}

describe("tariff drafts", () => {
  it("turn the API's list into fields and back unchanged", () => {
    expect(fromDrafts(toDrafts(SHOWN), null)).toEqual(ISSUE_EXAMPLE);
    expect(toDrafts(SHOWN)[0].weekend).toBe(true);
    expect(toDrafts(SHOWN)[1].weekend).toBe(false);
  });

  it("send a price that is not a number as null, for the API to refuse with its reason", () => {
    const drafts = toDrafts(SHOWN);
    drafts[1].rates[0].price = "cheap";
    expect(JSON.parse(JSON.stringify(fromDrafts(drafts, null)))[1].rates[0].price_per_kwh).toBeNull();
    drafts[1].rates[0].price = "0,25";
    expect(fromDrafts(drafts, null)[1].rates[0].price_per_kwh).toBe(0.25);
  });

  it("compare as the API means them (no weekend rates given or shown as null)", () => {
    expect(sameTariffs(ISSUE_EXAMPLE, SHOWN)).toBe(true);
    expect(sameTariffs(ISSUE_EXAMPLE, ISSUE_EXAMPLE.slice(1))).toBe(false);
  });
});

describe("TariffEditor", () => {
  it("builds a tariff with time-of-day rates and weekend rates", async () => {
    const user = userEvent.setup();
    const sent = vi.fn();
    render(<Harness initial={[]} sent={sent} />);
    expect(screen.getByText("No time-of-use tariffs.")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Add a tariff" }));
    await user.clear(screen.getByLabelText("Tariff 1 from"));
    await user.type(screen.getByLabelText("Tariff 1 from"), "2026-01-01");
    expect(screen.getByLabelText("Tariff 1 rates: rate 1 starts at")).toHaveValue("00:00");
    expect(screen.getByLabelText("Tariff 1 rates: rate 1 starts at")).toHaveAttribute("readonly");
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 1 price per kWh"), "0.12");
    await user.click(within(screen.getByRole("group", { name: "Tariff 1 rates" })).getByRole("button", { name: "Add a rate" }));
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 2 starts at"), "17:00");
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 2 price per kWh"), "0.35");
    await user.click(screen.getByRole("checkbox", { name: "Other rates on Saturdays and Sundays" }));
    await user.type(screen.getByLabelText("Tariff 1 weekend rates: rate 1 price per kWh"), "0.1");

    expect(sent).toHaveBeenLastCalledWith([
      {
        from: "2026-01-01", currency: "EUR",
        rates: [{ start: "00:00", price_per_kwh: 0.12 }, { start: "17:00", price_per_kwh: 0.35 }],
        weekend_rates: [{ start: "00:00", price_per_kwh: 0.1 }],
      },
    ]);
  });

  it("removes a rate and a tariff, never the first rate of a day", async () => {
    const user = userEvent.setup();
    const sent = vi.fn();
    render(<Harness initial={toDrafts(SHOWN)} sent={sent} />);
    expect(screen.queryByRole("button", { name: "Tariff 1 rates: remove rate 1" })).toBeNull();
    await user.click(screen.getByRole("button", { name: "Tariff 1 rates: remove rate 2" }));
    expect(sent).toHaveBeenLastCalledWith([
      { ...ISSUE_EXAMPLE[0], rates: [ISSUE_EXAMPLE[0].rates[0], ISSUE_EXAMPLE[0].rates[2]] }, ISSUE_EXAMPLE[1],
    ]);
    await user.click(screen.getByRole("button", { name: "Remove tariff 1" }));
    expect(sent).toHaveBeenLastCalledWith([ISSUE_EXAMPLE[1]]);
  });
});

const DEVICE: Device = {
  id: "m1", serial: null, name: "Kitchen", description: "", address: "", max_hourly_kwh: 2, timezone: "Europe/Bucharest",
  tariff_per_kwh: 0.3, currency: "EUR", tariffs: SHOWN, reading_kind: "interval", register_max_kwh: null, owner_ids: [],
  created_at: "2026-01-01T00:00:00+00:00",
};

describe("DeviceEditPage with tariffs", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("sends the tariffs only when they changed", () => {
    const form = {
      id: "m1", serial: "", name: "Kitchen", description: "", address: "", max_hourly_kwh: "2", timezone: "Europe/Bucharest",
      tariff_per_kwh: "0.3", currency: "EUR", tariffs: toDrafts(SHOWN), reading_kind: "interval" as const, register_max_kwh: "",
    };
    expect(deviceChanges(form, DEVICE)).toEqual({});
    form.tariffs[1].rates[0].price = "0.25";
    expect(deviceChanges(form, DEVICE)).toEqual({
      tariffs: [ISSUE_EXAMPLE[0], { ...ISSUE_EXAMPLE[1], rates: [{ start: "00:00", price_per_kwh: 0.25 }] }],
    });
    expect(deviceChanges({ ...form, tariffs: [] }, DEVICE)).toEqual({ tariffs: [] });
  });

  it("creates a device with the tariffs typed on its form, and shows the API's reasons for a bad one", async () => {
    signIn({ id: "a1", username: "admin", role: "admin", name: "Admin", email: null });
    let answer: { status: number; body: unknown } = {
      status: 422,
      body: { error: { code: "validation_error", message: "The request is not valid.", details: [
        { field: "tariffs.0.rates", message: "Value error, rate starts must be in increasing order: 09:00 comes after 17:00" }] } },
    };
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: { id: "a1", username: "admin", role: "admin", name: "Admin", email: null } }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /users": () => ({ body: { items: [], next_cursor: null } }),
      "POST /devices": () => answer,
    });
    vi.stubGlobal("fetch", api.fn);
    const user = userEvent.setup();
    renderInApp(<DeviceEditPage />);

    await user.type(await screen.findByLabelText("Name"), "Kitchen");
    await user.type(screen.getByLabelText("Limit per hour (kWh)"), "2");
    await user.type(screen.getByLabelText("Currency"), "ron");
    await user.click(screen.getByRole("button", { name: "Add a tariff" }));
    await user.clear(screen.getByLabelText("Tariff 1 from"));
    await user.type(screen.getByLabelText("Tariff 1 from"), "2026-01-01");
    expect(screen.getByLabelText("Tariff 1 currency")).toHaveValue("RON");
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 1 price per kWh"), "0.5");
    await user.click(screen.getByRole("button", { name: "Add a rate" }));
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 2 starts at"), "09:00");
    await user.type(screen.getByLabelText("Tariff 1 rates: rate 2 price per kWh"), "0.9");
    await user.click(screen.getByRole("button", { name: "Create device" }));

    expect(await screen.findByText(/rate starts must be in increasing order/)).toBeInTheDocument();
    const posted = api.calls.filter((c) => c.method === "POST" && c.path === "/devices");
    expect(posted).toHaveLength(1);
    expect((posted[0].body as { tariffs: Tariff[] }).tariffs).toEqual([
      { from: "2026-01-01", currency: "RON", rates: [{ start: "00:00", price_per_kwh: 0.5 }, { start: "09:00", price_per_kwh: 0.9 }] },
    ]);

    answer = { status: 201, body: { ...DEVICE, id: "m2" } };
    await user.click(screen.getByRole("button", { name: "Create device" }));
    await waitFor(() => expect(api.calls.filter((c) => c.method === "POST" && c.path === "/devices")).toHaveLength(2));
  });
});

describe("DeviceEditPage reading kind", () => {
  const form = {
    id: "m1", serial: "", name: "Kitchen", description: "", address: "", max_hourly_kwh: "2", timezone: "Europe/Bucharest",
    tariff_per_kwh: "0.3", currency: "EUR", tariffs: toDrafts(SHOWN), reading_kind: "interval" as const, register_max_kwh: "",
  };

  it("sends the kind and the register's maximum only when they changed, and no maximum for intervals", () => {
    expect(deviceChanges({ ...form, register_max_kwh: "99999" }, DEVICE)).toEqual({});
    expect(deviceChanges({ ...form, reading_kind: "register", register_max_kwh: "99999,9" }, DEVICE))
      .toEqual({ reading_kind: "register", register_max_kwh: 99999.9 });
    const register: Device = { ...DEVICE, reading_kind: "register", register_max_kwh: 99999.9 };
    expect(deviceChanges({ ...form, reading_kind: "interval", register_max_kwh: "99999.9" }, register))
      .toEqual({ reading_kind: "interval", register_max_kwh: null });
  });

  it("creates a register device with its maximum", async () => {
    signIn({ id: "a1", username: "admin", role: "admin", name: "Admin", email: null });
    const api = fakeFetch({
      "GET /auth/me": () => ({ body: { id: "a1", username: "admin", role: "admin", name: "Admin", email: null } }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /users": () => ({ body: { items: [], next_cursor: null } }),
      "POST /devices": () => ({ status: 201, body: { ...DEVICE, id: "m3", reading_kind: "register", register_max_kwh: 99999.9 } }),
    });
    vi.stubGlobal("fetch", api.fn);
    const user = userEvent.setup();
    renderInApp(<DeviceEditPage />);

    await user.type(await screen.findByLabelText("Name"), "Main meter");
    await user.type(screen.getByLabelText("Limit per hour (kWh)"), "5");
    expect(screen.queryByLabelText("Register rolls over at (kWh)")).not.toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText("Readings are"), "register");
    await user.type(screen.getByLabelText("Register rolls over at (kWh)"), "99999.9");
    await user.click(screen.getByRole("button", { name: "Create device" }));

    await waitFor(() => expect(api.calls.filter((c) => c.method === "POST" && c.path === "/devices")).toHaveLength(1));
    const [posted] = api.calls.filter((c) => c.method === "POST" && c.path === "/devices");
    expect(posted.body).toMatchObject({ name: "Main meter", reading_kind: "register", register_max_kwh: 99999.9 });
  });
});
