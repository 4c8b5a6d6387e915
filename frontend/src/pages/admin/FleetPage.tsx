import { useCallback, useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { describeError } from "../../api/client";
import type { DayConsumption, Device, Reading } from "../../api/types";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useLoad } from "../../components/hooks";
import { LimitBar } from "../../components/LimitBar";
import { formatDateTime, formatKwh, timeAgo, todayIn } from "../../format";
import { useAlerts } from "../../state/alerts";
import { useSession } from "../../state/auth";
import { useFrames } from "../../state/realtime";
import { currentHourKwh } from "../MyDevicesPage";

/** A meter is silent after this long without a reading (three 10-minute intervals). */
export const SILENT_AFTER_MS = 30 * 60 * 1000;

interface Row {
  day?: DayConsumption;
  last?: Reading | null;
  error?: string;
}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await work(item);
    }
  });
  await Promise.all(runners);
}

export function isSilent(last: Reading | null | undefined, now: number = Date.now()): boolean {
  if (!last) return true;
  return now - Date.parse(last.timestamp) >= SILENT_AFTER_MS;
}

export default function FleetPage() {
  const { api } = useSession();
  const { alerts } = useAlerts();
  const devices = useLoad(api.listDevices);
  const [rows, setRows] = useState<Record<string, Row>>({});
  const timers = useRef(new Map<string, number>());

  const loadRow = useCallback(
    async (device: Device) => {
      try {
        const [day, readings] = await Promise.all([api.day(device.id, todayIn(device.timezone)), api.readings(device.id, { limit: 1 })]);
        setRows((r) => ({ ...r, [device.id]: { day, last: readings.items[0] ?? null } }));
      } catch (e) {
        setRows((r) => ({ ...r, [device.id]: { ...r[device.id], error: describeError(e).message } }));
      }
    },
    [api],
  );

  useEffect(() => {
    if (devices.data) void pool(devices.data, 4, loadRow);
  }, [devices.data, loadRow]);

  useEffect(() => {
    const all = timers.current;
    return () => all.forEach((t) => window.clearTimeout(t));
  }, []);

  useFrames((frame) => {
    if (frame.type !== "reading") return;
    const device = devices.data?.find((d) => d.id === frame.device_id);
    if (!device) return;
    const old = timers.current.get(device.id);
    if (old) window.clearTimeout(old);
    timers.current.set(device.id, window.setTimeout(() => void loadRow(device), 1000));
  });

  const openAlerts = alerts.filter((a) => !a.acknowledged_at);
  const list = devices.data ?? [];
  const silentCount = list.filter((d) => rows[d.id] && !rows[d.id].error && isSilent(rows[d.id].last)).length;
  const overNow = list.filter((d) => {
    const day = rows[d.id]?.day;
    const now = day ? currentHourKwh(day) : null;
    return day && now !== null && now > day.max_hourly_kwh;
  }).length;

  return (
    <div className="page">
      <header className="page-head">
        <h1>Fleet</h1>
        <div className="head-aside">
          <button type="button" className="secondary small" onClick={devices.reload}>Refresh</button>
          <Link className="button small" to="/admin/devices/new">New device</Link>
        </div>
      </header>
      <div className="cards">
        <div className="stat"><span className="stat-label">Devices</span><span className="stat-value">{list.length}</span></div>
        <div className="stat"><span className="stat-label">Over the limit this hour</span><span className={`stat-value ${overNow ? "up" : ""}`}>{overNow}</span></div>
        <div className="stat"><span className="stat-label">Silent meters</span><span className={`stat-value ${silentCount ? "warn" : ""}`}>{silentCount}</span></div>
        <div className="stat"><span className="stat-label">Open alerts</span><span className={`stat-value ${openAlerts.length ? "up" : ""}`}>{openAlerts.length}</span></div>
      </div>
      <ErrorBox error={devices.error} />
      {devices.loading && !devices.data && <Spinner label="Loading the fleet…" />}
      {devices.data && devices.data.length === 0 && (
        <div className="card empty"><p>No devices yet. <Link to="/admin/devices/new">Create the first one</Link>.</p></div>
      )}
      {list.length > 0 && (
        <div className="table-wrap card">
          <table className="fleet-table">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Last reading</th>
                <th scope="col">Today</th>
                <th scope="col">This hour against the limit</th>
                <th scope="col">State</th>
                <th scope="col">Open alerts</th>
              </tr>
            </thead>
            <tbody>
              {list.map((device) => {
                const row = rows[device.id];
                const day = row?.day;
                const now = day ? currentHourKwh(day) : null;
                const silent = row && !row.error && isSilent(row.last);
                const open = openAlerts.filter((a) => a.device_id === device.id);
                const over = day && now !== null && now > day.max_hourly_kwh;
                return (
                  <tr key={device.id} data-device-id={device.id}>
                    <td data-label="Device">
                      <Link to={`/devices/${encodeURIComponent(device.id)}`}>{device.name}</Link>
                      <div className="muted small-text">{device.owner_ids.length} owner{device.owner_ids.length === 1 ? "" : "s"} · {device.timezone}</div>
                    </td>
                    <td data-label="Last reading">
                      {!row ? "…" : row.last ? <span title={formatDateTime(row.last.timestamp)}>{timeAgo(row.last.timestamp)}</span> : <span className="muted">none in 24 h</span>}
                    </td>
                    <td data-label="Today">{day ? (day.hours.some((h) => h.kwh !== null) ? formatKwh(day.total_kwh, 3) : <span className="muted">no readings</span>) : row?.error ? <span className="inline-error">{row.error}</span> : "…"}</td>
                    <td data-label="This hour" className="bar-cell">{day ? <LimitBar label="" value={now} limit={day.max_hourly_kwh} /> : "…"}</td>
                    <td data-label="State">
                      {!row ? "…" : over ? <span className="pill danger">Over limit</span> : silent ? <span className="pill warn">{row.last ? "Silent" : "No readings"}</span> : <span className="pill ok">Reporting</span>}
                    </td>
                    <td data-label="Open alerts">{open.length ? <Link to="/alerts" className="pill danger">{open.length}</Link> : <span className="muted">0</span>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
