import { useCallback, useState } from "react";
import { Link } from "react-router-dom";
import { ConfirmButton } from "../../components/ConfirmButton";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useDebounced, usePaged } from "../../components/hooks";
import { formatKwh, formatMoney } from "../../format";
import { useSession } from "../../state/auth";
import { DeviceImportPanel } from "./DeviceImportPanel";

/** Every device by name, a page at a time (a name search narrows it); import, create, delete. */
export default function DevicesAdminPage() {
  const { api } = useSession();
  const [query, setQuery] = useState("");
  const q = useDebounced(query.trim(), 300);
  const devices = usePaged(useCallback((cursor: string | null) => api.devicesPage({ q: q || undefined, cursor, limit: 50 }), [api, q]));
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [importing, setImporting] = useState(false);
  const list = devices.items;

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
      <div className="toolbar">
        <label htmlFor="device-search">Search</label>
        <input id="device-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)}
          placeholder="Name starts with…" />
      </div>
      <ErrorBox error={devices.error ?? devices.moreError} />
      <ErrorBox error={error} />
      {!devices.loading && list.length === 0 && (
        <div className="card empty"><p>{q ? `No devices match “${q}”.` : "No devices yet."}</p></div>
      )}
      {list.length > 0 && (
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
              {list.map((d) => (
                <tr key={d.id}>
                  <td data-label="Name">
                    <Link to={`/admin/devices/${encodeURIComponent(d.id)}`}>{d.name}</Link>
                    <div className="muted small-text">{d.serial ? `${d.serial} · ${d.id}` : d.id}</div>
                  </td>
                  <td data-label="Owners">{d.owner_ids.length ? d.owner_ids.length : <span className="muted">none</span>}</td>
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
                          devices.setItems((items) => items.filter((x) => x.id !== d.id));
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
      {(devices.loading || devices.loadingMore) && <Spinner label="Loading devices…" />}
      {devices.hasMore && !devices.loading && !devices.loadingMore && (
        <button type="button" className="secondary" onClick={() => void devices.loadMore()}>Load more</button>
      )}
    </div>
  );
}
