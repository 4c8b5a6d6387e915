/** Turns the API's consumption answers into chart series; a missing hour stays null, never zero. */
import type { DayConsumption, RangeConsumption } from "../api/types";
import { datePart, formatDate, formatKwh, formatMoney, offsetOf, wallClock } from "../format";

export interface DayChartModel {
  labels: string[];
  values: (number | null)[];
  limit: number;
  /** Indexes of hours with no reading. */
  missing: number[];
  /** Per hour: above the limit. */
  over: boolean[];
  /** Indexes of hours in which a register meter was reset (the hour counts the new value, not a difference). */
  resets: number[];
}

/** Hour labels in the device's local time; on a day with a repeated hour (DST) the offset tells them apart. */
export function hourLabels(starts: string[]): string[] {
  const clock = starts.map(wallClock);
  const counts = new Map<string, number>();
  clock.forEach((c) => counts.set(c, (counts.get(c) ?? 0) + 1));
  return starts.map((start, i) => ((counts.get(clock[i]) ?? 0) > 1 ? `${clock[i]} (${offsetOf(start)})` : clock[i]));
}

export function dayChartModel(day: DayConsumption): DayChartModel {
  const values = day.hours.map((h) => h.kwh);
  return {
    labels: hourLabels(day.hours.map((h) => h.start)),
    values,
    limit: day.max_hourly_kwh,
    missing: values.flatMap((v, i) => (v === null ? [i] : [])),
    over: values.map((v) => v !== null && v > day.max_hourly_kwh),
    resets: day.hours.flatMap((h, i) => (h.reset ? [i] : [])),
  };
}

export interface DaySummary {
  total: number;
  hoursWithData: number;
  average: number | null;
  peakLabel: string | null;
  peakKwh: number | null;
  cost: number | null;
  currency: string | null;
  hoursOverLimit: number;
}

export function summarizeDay(day: DayConsumption): DaySummary {
  const known = day.hours.filter((h) => h.kwh !== null);
  const peak = day.peak_hour ? day.hours.find((h) => h.start === day.peak_hour) : undefined;
  return {
    total: day.total_kwh,
    hoursWithData: known.length,
    average: known.length ? day.total_kwh / known.length : null,
    peakLabel: day.peak_hour ? wallClock(day.peak_hour) : null,
    peakKwh: peak?.kwh ?? null,
    cost: day.cost,
    currency: day.currency,
    hoursOverLimit: known.filter((h) => (h.kwh as number) > day.max_hourly_kwh).length,
  };
}

const round6 = (value: number) => Math.round(value * 1e6) / 1e6;

/**
 * Applies a live `reading` frame (the hour's new total) to a day; returns null when the hour is
 * not on that day. Totals are recomputed; the hour is costed at its own rate (`price_per_kwh`, the
 * rate in force at its local start), and the day's cost is its hours' while every counted hour has one.
 */
export function applyReading(day: DayConsumption, hourStart: string, kwh: number): DayConsumption | null {
  const at = Date.parse(hourStart);
  if (Number.isNaN(at)) return null;
  const index = day.hours.findIndex((h) => Date.parse(h.start) === at);
  if (index < 0) return null;
  const hours = day.hours.map((h, i) =>
    i === index ? { ...h, kwh, readings: Math.max(1, h.readings), cost: h.price_per_kwh === null ? null : round6(kwh * h.price_per_kwh) } : h,
  );
  const total = round6(hours.reduce((sum, h) => sum + (h.kwh ?? 0), 0));
  let peak: { start: string; kwh: number } | null = null;
  for (const h of hours) if (h.kwh !== null && (peak === null || h.kwh > peak.kwh)) peak = { start: h.start, kwh: h.kwh };
  const priced = hours.some((h) => h.price_per_kwh !== null) && hours.every((h) => h.kwh === null || h.price_per_kwh !== null);
  const cost = priced ? round6(hours.reduce((sum, h) => sum + (h.kwh ?? 0) * (h.price_per_kwh ?? 0), 0)) : null;
  return { ...day, hours, total_kwh: total, peak_hour: peak?.start ?? null, cost };
}

export interface RangeChartModel {
  labels: string[];
  current: (number | null)[];
  previous: (number | null)[];
  previousLabels: string[];
  missing: number[];
}

function pointLabel(start: string, granularity: string): string {
  return granularity === "hour" ? `${datePart(start).slice(5)} ${wallClock(start)}` : formatDate(datePart(start));
}

/** The range beside the previous period of the same length, point by point. */
export function rangeChartModel(range: RangeConsumption): RangeChartModel {
  const granularity = range.granularity;
  const previousPoints = range.previous.points;
  const current = range.points.map((p) => p.kwh);
  return {
    labels: range.points.map((p) => pointLabel(p.start, granularity)),
    current,
    previous: range.points.map((_, i) => previousPoints[i]?.kwh ?? null),
    previousLabels: range.points.map((_, i) => (previousPoints[i] ? pointLabel(previousPoints[i].start, granularity) : "")),
    missing: current.flatMap((v, i) => (v === null ? [i] : [])),
  };
}

/**
 * A range's cost as words: one total; or, when the range spans currencies or holds kWh from dates with
 * no tariff, what is known (each currency's cost, and the kWh left without a price).
 */
export function rangeCost(range: Pick<RangeConsumption, "cost" | "currency" | "costs" | "uncosted_kwh">): string {
  if (range.cost !== null) return formatMoney(range.cost, range.currency);
  const parts = range.costs.map((c) => formatMoney(c.cost, c.currency));
  if (!parts.length) return "no tariff for these dates";
  const known = parts.join(" + ");
  return range.uncosted_kwh > 0 ? `${known}, and ${formatKwh(range.uncosted_kwh, 3)} with no tariff` : known;
}

/** Percentage change from the previous period, or null when it cannot be said. */
export function changeFromPrevious(range: RangeConsumption): number | null {
  const before = range.previous.total_kwh;
  if (!before) return null;
  return ((range.total_kwh - before) / before) * 100;
}
