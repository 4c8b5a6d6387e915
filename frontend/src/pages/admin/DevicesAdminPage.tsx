import { Link } from "react-router-dom";
import { ConfirmButton } from "../../components/ConfirmButton";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useLoad } from "../../components/hooks";
import { formatKwh, formatMoney } from "../../format";
import { useSession } from "../../state/auth";
import { useState } from "react";
import { DeviceImportPanel } from "./DeviceImportPanel";

export default function DevicesAdminPage() {
  const { api } = useSession();
  const devices = useLoad(api.listDevices);
  const users = useLoad(api.allUsers);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [importing, setImporting] = useState(false);
  const names = new Map((users.data ?? []).map((u) => [u.id, u.name || u.username]));

  return (
    <div className="page">
      <header className="page-head">
        <h1>Devices</h1>
        <div className="head-aside">
          <button type="button" className="secondary" aria-expanded={importing} onClick={() => setImporting((v) => !v)}>
            Import CSV
          </button>
          <Link className="button" to="/admin/devices/new">New device</Link>
        </div>
      </header>
      {importing && <DeviceImportPanel onDone={devices.reload} />}
      {message && <div className="success" role="status">{message}</div>}
      <ErrorBox error={devices.error} />
      <ErrorBox error={error} />
      {devices.loading && !devices.data && <Spinner label="Loading devices…" />}
      {devices.data && devices.data.length === 0 && <div className="card empty"><p>No devices yet.</p></div>}
      {devices.data && devices.data.length > 0 && (
        <div className="table-wrap card">
          <table className="devices-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Owners</th>
                <th scope="col">Limit per hour</th>
                <th scope="col">Time zone</th>
                <th scope="col">Tariff</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {devices.data.map((d) => (
                <tr key={d.id}>
                  <td data-label="Name">
                    <Link to={`/admin/devices/${encodeURIComponent(d.id)}`}>{d.name}</Link>
                    <div className="muted small-text">{d.serial ? `${d.serial} · ${d.id}` : d.id}</div>
                  </td>
                  <td data-label="Owners">{d.owner_ids.length ? d.owner_ids.map((id) => names.get(id) ?? id).join(", ") : <span className="muted">none</span>}</td>
                  <td data-label="Limit">{formatKwh(d.max_hourly_kwh)}</td>
                  <td data-label="Time zone">{d.timezone}</td>
                  <td data-label="Tariff">{d.tariff_per_kwh === null ? <span className="muted">—</span> : `${formatMoney(d.tariff_per_kwh, d.currency)}/kWh`}</td>
                  <td className="row-actions">
                    <Link className="button secondary small" to={`/devices/${encodeURIComponent(d.id)}`}>Charts</Link>
                    <Link className="button secondary small" to={`/admin/devices/${encodeURIComponent(d.id)}`}>Edit</Link>
                    <ConfirmButton
                      label="Delete"
                      onConfirm={async () => {
                        setError(null);
                        try {
                          await api.deleteDevice(d.id);
                          devices.setData((list) => (list ? list.filter((x) => x.id !== d.id) : list));
                          setMessage(`Device ${d.name} deleted.`);
                        } catch (e) {
                          setError(e);
                        }
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
