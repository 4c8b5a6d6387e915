import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";
import type { DayConsumption, Granularity } from "../api/types";
import { DayChart } from "../charts/DayChart";
import { applyReading, changeFromPrevious, rangeCost, summarizeDay } from "../charts/mapping";
import { RangeChart } from "../charts/RangeChart";
import { ErrorBox, Spinner } from "../components/ErrorBox";
import { useLoad } from "../components/hooks";
import { addDays, formatKwh, formatMoney, timeAgo, todayIn, wallClock } from "../format";
import { useSession } from "../state/auth";
import { useFrames } from "../state/realtime";

function SummaryCards({ day }: { day: DayConsumption }) {
  const s = summarizeDay(day);
  return (
    <div className="cards" data-testid="summary-cards">
      <div className="stat">
        <span className="stat-label">Total</span>
        <span className="stat-value" data-testid="day-total">{formatKwh(s.total, 3)}</span>
        <span className="stat-sub">{s.hoursWithData} of {day.hours.length} hours with readings</span>
      </div>
      <div className="stat">
        <span className="stat-label">Peak hour</span>
        <span className="stat-value">{s.peakLabel ?? "—"}</span>
        <span className="stat-sub">{s.peakKwh !== null ? formatKwh(s.peakKwh, 3) : "no readings"}</span>
      </div>
      <div className="stat">
        <span className="stat-label">Average per hour</span>
        <span className="stat-value">{formatKwh(s.average, 3)}</span>
        <span className="stat-sub">limit {formatKwh(day.max_hourly_kwh)}{s.hoursOverLimit ? `, ${s.hoursOverLimit} h over` : ""}</span>
      </div>
      <div className="stat">
        <span className="stat-label">Cost</span>
        <span className="stat-value">{formatMoney(s.cost, s.currency)}</span>
        <span className="stat-sub">{s.cost === null ? "no tariff for this day" : "each hour at its own rate"}</span>
      </div>
    </div>
  );
}

/** A rate as given (prices often have more than a currency's two decimals). */
function formatRate(value: number, currency: string | null): string {
  return `${value.toLocaleString(undefined, { maximumFractionDigits: 6 })}${currency ? ` ${currency}` : ""}`;
}

interface RangeQuery {
  from: string;
  to: string;
  granularity: Granularity;
}

function HourTable({ day }: { day: DayConsumption }) {
  return (
    <details className="hour-table">
      <summary>Show the hours as a table</summary>
      <div className="table-wrap">
        <table>
          <thead>
            <tr><th scope="col">Hour</th><th scope="col">kWh</th><th scope="col">Readings</th><th scope="col">Price per kWh</th><th scope="col">Cost</th></tr>
          </thead>
          <tbody>
            {day.hours.map((h) => (
              <tr key={h.start} className={h.kwh === null ? "missing" : h.kwh > day.max_hourly_kwh ? "over" : ""}>
                <td>{wallClock(h.start)}</td>
                <td>{h.kwh === null ? <span className="muted">no reading</span> : h.kwh.toFixed(3)}</td>
                <td>{h.readings}{h.reset ? <span className="muted"> (meter reset)</span> : null}</td>
                <td>{h.price_per_kwh === null ? <span className="muted">no tariff</span> : formatRate(h.price_per_kwh, day.currency)}</td>
                <td>{formatMoney(h.cost, day.currency)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

export default function DevicePage() {
  const { deviceId = "" } = useParams();
  const { api, user } = useSession();
  const device = useLoad(useCallback(() => api.getDevice(deviceId), [api, deviceId]));
  const timezone = device.data?.timezone ?? "UTC";
  const today = todayIn(timezone);
  const [date, setDate] = useState<string>("");
  const shownDate = date || today;
  const day = useLoad(useCallback(() => api.day(deviceId, shownDate), [api, deviceId, shownDate]));
  const last = useLoad(useCallback(() => api.readings(deviceId, { limit: 1 }), [api, deviceId]));

  // The period shown and the form start as the last seven days in the device's time zone (known once the
  // device is loaded); null until the person picks one.
  const lastWeek: RangeQuery | null = device.data ? { from: addDays(today, -6), to: today, granularity: "day" } : null;
  const [pickedRange, setPickedRange] = useState<RangeQuery | null>(null);
  const [editedRange, setEditedRange] = useState<RangeQuery | null>(null);
  const rangeQuery = pickedRange ?? lastWeek;
  const rangeForm = editedRange ?? rangeQuery ?? { from: "", to: "", granularity: "day" };
  const rangeFrom = rangeQuery?.from;
  const rangeTo = rangeQuery?.to;
  const granularity = rangeQuery?.granularity;
  const range = useLoad(
    useCallback(
      () => (rangeFrom && rangeTo ? api.range(deviceId, rangeFrom, rangeTo, granularity) : Promise.resolve(null)),
      [api, deviceId, rangeFrom, rangeTo, granularity],
    ),
  );
  const [csvError, setCsvError] = useState<unknown>(null);
  const [csvBusy, setCsvBusy] = useState(false);
  const [liveAt, setLiveAt] = useState<number | null>(null);
  const refetchTimer = useRef<number | null>(null);

  useEffect(() => () => {
    if (refetchTimer.current) window.clearTimeout(refetchTimer.current);
  }, []);

  useFrames((frame) => {
    if (frame.type !== "reading" || frame.device_id !== deviceId) return;
    setLiveAt(Date.now());
    day.setData((current) => (current ? applyReading(current, frame.hour_start, frame.kwh) ?? current : current));
    // The frame is a hint; the stored totals are the truth: refresh shortly after a burst of frames.
    if (refetchTimer.current) window.clearTimeout(refetchTimer.current);
    refetchTimer.current = window.setTimeout(() => {
      day.reload();
      last.reload();
    }, 1500);
  });

  const downloadCsv = async () => {
    if (!rangeQuery) return;
    setCsvBusy(true);
    setCsvError(null);
    try {
      const blob = await api.csv(deviceId, rangeForm.from || rangeQuery.from, rangeForm.to || rangeQuery.to);
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `${deviceId}_${rangeForm.from || rangeQuery.from}_${rangeForm.to || rangeQuery.to}.csv`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      setCsvError(e);
    } finally {
      setCsvBusy(false);
    }
  };

  const showRange = (event: FormEvent) => {
    event.preventDefault();
    if (rangeForm.from && rangeForm.to) setPickedRange({ ...rangeForm });
  };

  if (device.loading && !device.data) return <Spinner label="Loading the device…" />;
  if (device.error) {
    return (
      <div className="page">
        <ErrorBox error={device.error} />
        <Link to={user.role === "admin" ? "/admin" : "/devices"}>Back</Link>
      </div>
    );
  }
  const d = device.data!;
  const lastReading = last.data?.items[0];
  const change = range.data ? changeFromPrevious(range.data) : null;

  return (
    <div className="page device-page">
      <nav className="breadcrumbs" aria-label="Breadcrumb">
        <Link to={user.role === "admin" ? "/admin" : "/devices"}>{user.role === "admin" ? "Fleet" : "My devices"}</Link> / <span>{d.name}</span>
      </nav>
      <header className="page-head">
        <div>
          <h1>{d.name}</h1>
          <p className="muted">
            {d.address || d.description || `Meter ${d.id}`} · limit {formatKwh(d.max_hourly_kwh)} per hour · {d.timezone}
            {d.tariffs?.length ? ` · time-of-use tariff (${d.tariffs.length} from ${d.tariffs[0].from})` : d.tariff_per_kwh !== null && ` · ${formatMoney(d.tariff_per_kwh, d.currency)} per kWh`}
          </p>
        </div>
        <div className="head-aside">
          <span className="muted">Last reading: {lastReading ? timeAgo(lastReading.timestamp) : "none yet"}</span>
          {liveAt && <span className="live-tag" title="Updated from a live reading">● live</span>}
          {user.role === "admin" && <Link className="button secondary small" to={`/admin/devices/${encodeURIComponent(d.id)}`}>Edit</Link>}
        </div>
      </header>

      <section className="card" aria-labelledby="day-title">
        <div className="section-head">
          <h2 id="day-title">Day</h2>
          <div className="date-picker">
            <button type="button" className="secondary small" onClick={() => setDate(addDays(shownDate, -1))} aria-label="Previous day">‹</button>
            <label htmlFor="day-date" className="sr-only">Day</label>
            <input id="day-date" type="date" value={shownDate} max={today} onChange={(e) => setDate(e.target.value)} />
            <button type="button" className="secondary small" onClick={() => setDate(addDays(shownDate, 1))} disabled={shownDate >= today} aria-label="Next day">›</button>
            <button type="button" className="secondary small" onClick={() => setDate("")} disabled={shownDate === today}>Today</button>
          </div>
        </div>
        <ErrorBox error={day.error} />
        {day.loading && !day.data && <Spinner label="Loading the day…" />}
        {day.data && (
          <>
            <SummaryCards day={day.data} />
            <DayChart day={day.data} />
            <HourTable day={day.data} />
          </>
        )}
      </section>

      <section className="card" aria-labelledby="range-title">
        <div className="section-head">
          <h2 id="range-title">Period</h2>
        </div>
        <form className="range-form" onSubmit={showRange}>
          <div className="field">
            <label htmlFor="range-from">From</label>
            <input id="range-from" type="date" value={rangeForm.from} max={rangeForm.to || today} onChange={(e) => setEditedRange({ ...rangeForm, from: e.target.value })} required />
          </div>
          <div className="field">
            <label htmlFor="range-to">To</label>
            <input id="range-to" type="date" value={rangeForm.to} min={rangeForm.from} onChange={(e) => setEditedRange({ ...rangeForm, to: e.target.value })} required />
          </div>
          <div className="field">
            <label htmlFor="range-granularity">By</label>
            <select id="range-granularity" value={rangeForm.granularity} onChange={(e) => setEditedRange({ ...rangeForm, granularity: e.target.value as Granularity })}>
              <option value="day">Day</option>
              <option value="hour">Hour</option>
            </select>
          </div>
          <button type="submit">Show</button>
          <button type="button" className="secondary" onClick={downloadCsv} disabled={csvBusy}>{csvBusy ? "Preparing…" : "Download CSV"}</button>
        </form>
        <ErrorBox error={csvError} title="CSV:" />
        <ErrorBox error={range.error} />
        {range.loading && !range.data && <Spinner label="Loading the period…" />}
        {range.data && (
          <>
            <div className="cards compact">
              <div className="stat">
                <span className="stat-label">This period</span>
                <span className="stat-value">{formatKwh(range.data.total_kwh)}</span>
                <span className="stat-sub" data-testid="range-cost">{rangeCost(range.data)}</span>
              </div>
              <div className="stat">
                <span className="stat-label">Previous period</span>
                <span className="stat-value">{formatKwh(range.data.previous.total_kwh)}</span>
                <span className="stat-sub">{range.data.previous.from} – {range.data.previous.to}</span>
              </div>
              <div className="stat">
                <span className="stat-label">Change</span>
                <span className={`stat-value ${change !== null && change > 0 ? "up" : "down"}`}>{change === null ? "—" : `${change > 0 ? "+" : ""}${change.toFixed(1)} %`}</span>
                <span className="stat-sub">against the previous period</span>
              </div>
            </div>
            <RangeChart range={range.data} />
          </>
        )}
      </section>
    </div>
  );
}
