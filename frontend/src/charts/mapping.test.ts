import { describe, expect, it } from "vitest";
import type { DayConsumption, RangeConsumption } from "../api/types";
import { applyReading, changeFromPrevious, dayChartModel, hourLabels, rangeChartModel, rangeCost, summarizeDay } from "./mapping";

function day(values: (number | null)[], limit = 2, extra: Partial<DayConsumption> = {}): DayConsumption {
  const hours = values.map((kwh, i) => ({
    start: `2026-03-10T${String(i).padStart(2, "0")}:00:00+02:00`,
    kwh,
    readings: kwh === null ? 0 : 6,
    price_per_kwh: 0.5,
    cost: kwh === null ? null : kwh * 0.5,
    reset: false,
  }));
  const known = values.filter((v): v is number => v !== null);
  const total = known.reduce((a, b) => a + b, 0);
  const peakIndex = known.length ? values.indexOf(Math.max(...known)) : -1;
  return {
    device_id: "m1", date: "2026-03-10", timezone: "Europe/Bucharest", unit: "kWh", hours,
    total_kwh: total, peak_hour: peakIndex >= 0 ? hours[peakIndex].start : null, max_hourly_kwh: limit,
    cost: total * 0.5, currency: "EUR", ...extra,
  };
}

describe("dayChartModel", () => {
  it("lists the hours in which a register meter was reset", () => {
    const plain = day([1, 2, 0.5, 3]);
    const withReset = { ...plain, hours: plain.hours.map((h, i) => ({ ...h, reset: i === 2 })) };
    expect(dayChartModel(plain).resets).toEqual([]);
    expect(dayChartModel(withReset).resets).toEqual([2]);
  });

  it("keeps a missing hour null, never zero, and lists it as missing", () => {
    const model = dayChartModel(day([1, null, 0, 3]));
    expect(model.values).toEqual([1, null, 0, 3]);
    expect(model.missing).toEqual([1]);
    expect(model.labels).toEqual(["00:00", "01:00", "02:00", "03:00"]);
  });

  it("marks hours over the limit", () => {
    expect(dayChartModel(day([1, null, 2, 2.5], 2)).over).toEqual([false, false, false, true]);
  });

  it("tells a repeated hour of a DST day apart by its offset", () => {
    expect(hourLabels(["2026-10-25T03:00:00+03:00", "2026-10-25T03:00:00+02:00", "2026-10-25T04:00:00+02:00"])).toEqual([
      "03:00 (+03:00)", "03:00 (+02:00)", "04:00",
    ]);
  });
});

describe("summarizeDay", () => {
  it("averages over the hours with readings only", () => {
    const s = summarizeDay(day([1, null, null, 3]));
    expect(s.total).toBe(4);
    expect(s.hoursWithData).toBe(2);
    expect(s.average).toBe(2);
    expect(s.peakLabel).toBe("03:00");
    expect(s.peakKwh).toBe(3);
    expect(s.cost).toBe(2);
  });

  it("has no average and no peak on a day without readings", () => {
    const s = summarizeDay(day([null, null]));
    expect(s.average).toBeNull();
    expect(s.peakLabel).toBeNull();
  });
});

describe("applyReading", () => {
  it("sets the hour's new total from a live frame given in UTC", () => {
    const updated = applyReading(day([1, null, null]), "2026-03-09T23:00:00Z", 2.5)!;
    expect(updated.hours.map((h) => h.kwh)).toEqual([1, 2.5, null]);
    expect(updated.total_kwh).toBe(3.5);
    expect(updated.peak_hour).toBe("2026-03-10T01:00:00+02:00");
    expect(updated.cost).toBeCloseTo(1.75);
  });

  it("costs the hour at its own rate and the day at its hours' rates (time of use)", () => {
    const base = day([1, null, 2]);
    base.hours[1] = { ...base.hours[1], price_per_kwh: 0.35 };
    base.hours[2] = { ...base.hours[2], price_per_kwh: 0.1, cost: 0.2 };
    const updated = applyReading({ ...base, cost: 0.7 }, "2026-03-09T23:00:00Z", 2)!;
    expect(updated.hours[1].cost).toBeCloseTo(0.7);
    expect(updated.cost).toBeCloseTo(0.5 + 0.7 + 0.2);
  });

  it("leaves a day with no tariff without a cost", () => {
    const base = day([1, null], 2, { cost: null, currency: null });
    const unpriced = { ...base, hours: base.hours.map((h) => ({ ...h, price_per_kwh: null, cost: null })) };
    const updated = applyReading(unpriced, "2026-03-09T23:00:00Z", 2)!;
    expect(updated.total_kwh).toBe(3);
    expect(updated.cost).toBeNull();
    expect(updated.hours[1].cost).toBeNull();
  });

  it("ignores a frame for another day", () => {
    expect(applyReading(day([1]), "2026-03-11T10:00:00Z", 2)).toBeNull();
  });
});

describe("rangeChartModel", () => {
  const range: RangeConsumption = {
    device_id: "m1", from: "2026-03-08", to: "2026-03-10", granularity: "day", timezone: "UTC", unit: "kWh",
    points: [
      { start: "2026-03-08T00:00:00+00:00", kwh: 10, cost: null, currency: null },
      { start: "2026-03-09T00:00:00+00:00", kwh: null, cost: null, currency: null },
      { start: "2026-03-10T00:00:00+00:00", kwh: 5, cost: null, currency: null },
    ],
    total_kwh: 15, cost: null, currency: null, costs: [], uncosted_kwh: 15, max_hourly_kwh: 2,
    previous: {
      from: "2026-03-05", to: "2026-03-07", total_kwh: 20, cost: null, currency: null,
      points: [
        { start: "2026-03-05T00:00:00+00:00", kwh: null, cost: null, currency: null },
        { start: "2026-03-06T00:00:00+00:00", kwh: 12, cost: null, currency: null },
        { start: "2026-03-07T00:00:00+00:00", kwh: 8, cost: null, currency: null },
      ],
    },
  };

  it("puts the previous period beside the current one, point by point, nulls kept", () => {
    const model = rangeChartModel(range);
    expect(model.current).toEqual([10, null, 5]);
    expect(model.previous).toEqual([null, 12, 8]);
    expect(model.missing).toEqual([1]);
    expect(model.labels).toHaveLength(3);
    expect(model.previousLabels[1]).toMatch(/6/);
  });

  it("says a range's cost: one total, each currency's, or what had no tariff", () => {
    expect(rangeCost({ cost: 1.5, currency: "EUR", costs: [{ currency: "EUR", cost: 1.5 }], uncosted_kwh: 0 })).toMatch(/1\.50/);
    const mixed = rangeCost({ cost: null, currency: null, costs: [{ currency: "RON", cost: 6 }, { currency: "EUR", cost: 1 }], uncosted_kwh: 0 });
    expect(mixed).toMatch(/RON.*\+.*€|6\.00.*\+.*1\.00/);
    expect(rangeCost({ cost: null, currency: null, costs: [{ currency: "EUR", cost: 1.32 }], uncosted_kwh: 1 })).toMatch(/1\.32.*1 kWh with no tariff|1\.32.*1\.000 kWh with no tariff/);
    expect(rangeCost(range)).toBe("no tariff for these dates");
  });

  it("computes the change against the previous period", () => {
    expect(changeFromPrevious(range)).toBe(-25);
    expect(changeFromPrevious({ ...range, previous: { ...range.previous, total_kwh: 0 } })).toBeNull();
  });
});
