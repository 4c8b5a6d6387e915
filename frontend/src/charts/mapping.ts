/** Turns the API's consumption answers into chart series; a missing hour stays null, never zero. */
import type { DayConsumption, RangeConsumption } from "../api/types";
import { datePart, formatDate, offsetOf, wallClock } from "../format";

export interface DayChartModel {
  labels: string[];
  values: (number | null)[];
  limit: number;
  /** Indexes of hours with no reading. */
  missing: number[];
  /** Per hour: above the limit. */
  over: boolean[];
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

/**
 * Applies a live `reading` frame (the hour's new total) to a day; returns null when the hour is
 * not on that day. Totals are recomputed; cost follows the tariff implied by the day's own figures.
 */
export function applyReading(day: DayConsumption, hourStart: string, kwh: number): DayConsumption | null {
  const at = Date.parse(hourStart);
  if (Number.isNaN(at)) return null;
  const index = day.hours.findIndex((h) => Date.parse(h.start) === at);
  if (index < 0) return null;
  const hours = day.hours.map((h, i) => (i === index ? { ...h, kwh, readings: Math.max(1, h.readings) } : h));
  const total = Math.round(hours.reduce((sum, h) => sum + (h.kwh ?? 0), 0) * 1e6) / 1e6;
  let peak: { start: string; kwh: number } | null = null;
  for (const h of hours) if (h.kwh !== null && (peak === null || h.kwh > peak.kwh)) peak = { start: h.start, kwh: h.kwh };
  const tariff = day.cost !== null && day.total_kwh > 0 ? day.cost / day.total_kwh : null;
  return {
    ...day,
    hours,
    total_kwh: total,
    peak_hour: peak?.start ?? null,
    cost: day.cost === null ? null : tariff === null ? day.cost : Math.round(total * tariff * 1e6) / 1e6,
  };
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

/** Percentage change from the previous period, or null when it cannot be said. */
export function changeFromPrevious(range: RangeConsumption): number | null {
  const before = range.previous.total_kwh;
  if (!before) return null;
  return ((range.total_kwh - before) / before) * 100;
}
