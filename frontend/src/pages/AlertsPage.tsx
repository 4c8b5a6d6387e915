import { useState } from "react";
import { Link } from "react-router-dom";
import { AckButton } from "../components/AlertBell";
import { Spinner } from "../components/ErrorBox";
import { alertTitle, formatDateTime, formatKwh } from "../format";
import { useAlerts } from "../state/alerts";

export function AlertsPage() {
  const { alerts, loading, error, refresh, unread } = useAlerts();
  const [showAll, setShowAll] = useState(true);
  const shown = showAll ? alerts : alerts.filter((a) => !a.acknowledged_at);
  return (
    <div className="page">
      <header className="page-head">
        <h1>Alerts</h1>
        <div className="head-aside">
          <label className="checkbox">
            <input type="checkbox" checked={!showAll} onChange={(e) => setShowAll(!e.target.checked)} /> Only open ({unread})
          </label>
          <button type="button" className="secondary small" onClick={() => void refresh()}>Refresh</button>
        </div>
      </header>
      {error && <div className="error-box" role="alert">{error}</div>}
      {loading && <Spinner label="Loading alerts…" />}
      {!loading && shown.length === 0 && <div className="card empty"><p>No alerts{showAll ? "" : " open"}.</p></div>}
      {shown.length > 0 && (
        <div className="table-wrap card">
          <table className="alerts-table">
            <thead>
              <tr>
                <th scope="col">Alert</th>
                <th scope="col">Device</th>
                <th scope="col">Hour</th>
                <th scope="col">Used</th>
                <th scope="col">Limit</th>
                <th scope="col">Raised</th>
                <th scope="col"><span className="sr-only">Acknowledge</span></th>
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr key={a.id} className={a.acknowledged_at ? "read" : "unread"}>
                  <td data-label="Alert">{alertTitle(a.kind)}</td>
                  <td data-label="Device"><Link to={`/devices/${encodeURIComponent(a.device_id)}`}>{a.device_name || a.device_id}</Link></td>
                  <td data-label="Hour">{formatDateTime(a.hour_start)}</td>
                  <td data-label="Used">{a.kind === "silent_meter" ? "—" : formatKwh(a.total_kwh, 3)}</td>
                  <td data-label="Limit">{formatKwh(a.max_hourly_kwh)}</td>
                  <td data-label="Raised">{formatDateTime(a.created_at)}</td>
                  <td><AckButton alert={a} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
