import { useCallback } from "react";
import { Link } from "react-router-dom";
import type { DayConsumption, Device } from "../api/types";
import { ErrorBox, Spinner } from "../components/ErrorBox";
import { useLoad } from "../components/hooks";
import { LimitBar } from "../components/LimitBar";
import { formatKwh, formatMoney, todayIn } from "../format";
import { useSession } from "../state/auth";
import { useFrames } from "../state/realtime";

function currentHourKwh(day: DayConsumption, now: number = Date.now()): number | null {
  const hour = day.hours.find((h) => {
    const start = Date.parse(h.start);
    return start <= now && now < start + 3600_000;
  });
  return hour ? hour.kwh : null;
}

function DeviceCard({ device }: { device: Device }) {
  const { api } = useSession();
  const day = useLoad(useCallback(() => api.day(device.id, todayIn(device.timezone)), [api, device.id, device.timezone]));
  useFrames((frame) => {
    if (frame.type === "reading" && frame.device_id === device.id) day.reload();
  });
  const d = day.data;
  const peak = d ? Math.max(...d.hours.map((h) => h.kwh ?? -1)) : -1;
  const overHours = d ? d.hours.filter((h) => h.kwh !== null && h.kwh > d.max_hourly_kwh).length : 0;
  return (
    <li className="card device-card">
      <div className="device-card-head">
        <h2><Link to={`/devices/${encodeURIComponent(device.id)}`}>{device.name}</Link></h2>
        {overHours > 0 && <span className="pill danger">{overHours} h over limit</span>}
      </div>
      <p className="muted small-text">{device.address || device.description || `Meter ${device.id}`}</p>
      {day.loading && !d && <Spinner label="Loading today…" />}
      <ErrorBox error={day.error} />
      {d && (
        <>
          <div className="today">
            <span className="today-label">Today</span>
            <span className="today-value" data-testid="today-total">{formatKwh(d.total_kwh, 3)}</span>
            {d.cost !== null && <span className="muted">{formatMoney(d.cost, d.currency)}</span>}
          </div>
          <LimitBar label="This hour" value={currentHourKwh(d)} limit={d.max_hourly_kwh} />
          <LimitBar label="Highest hour today" value={peak >= 0 ? peak : null} limit={d.max_hourly_kwh} />
        </>
      )}
      <Link className="button secondary small" to={`/devices/${encodeURIComponent(device.id)}`}>Open charts</Link>
    </li>
  );
}

export function MyDevicesPage() {
  const { api, user } = useSession();
  const devices = useLoad(api.listDevices);
  return (
    <div className="page">
      <h1>{user.role === "admin" ? "All devices" : "My devices"}</h1>
      <ErrorBox error={devices.error} />
      {devices.loading && !devices.data && <Spinner label="Loading your devices…" />}
      {devices.data && devices.data.length === 0 && (
        <div className="card empty">
          <p>No devices yet. An administrator assigns meters to your account; they show up here.</p>
        </div>
      )}
      <ul className="device-grid">
        {devices.data?.map((device) => <DeviceCard key={device.id} device={device} />)}
      </ul>
      {devices.data && devices.data.length > 0 && (
        <p className="muted small-text">Limits are per hour: a bar turns red when an hour goes over its device's limit.</p>
      )}
    </div>
  );
}
