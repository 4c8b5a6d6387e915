import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { describeError } from "../api/client";
import type { Alert } from "../api/types";
import { alertTitle, formatDateTime, formatKwh } from "../format";
import { useAlerts } from "../state/alerts";

export function alertSummary(alert: Alert): string {
  if (alert.kind === "silent_meter") return `${alert.device_name || alert.device_id}: no reading since ${formatDateTime(alert.hour_start)}`;
  return `${alert.device_name || alert.device_id}: ${formatKwh(alert.total_kwh)} in the hour from ${formatDateTime(alert.hour_start)} (limit ${formatKwh(alert.max_hourly_kwh)})`;
}

export function AckButton({ alert, className = "small" }: { alert: Alert; className?: string }) {
  const { acknowledge } = useAlerts();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (alert.acknowledged_at) return <span className="muted">Acknowledged</span>;
  return (
    <>
      <button
        type="button"
        className={className}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await acknowledge(alert.id);
          } catch (e) {
            setError(describeError(e).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? "…" : "Acknowledge"}
      </button>
      {error && <span className="inline-error" role="alert">{error}</span>}
    </>
  );
}

/** The bell: unread count, and the latest alerts with acknowledge buttons. */
export function AlertBell() {
  const { alerts, unread, loading, error } = useAlerts();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    const onClick = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);

  const label = unread === 1 ? "1 unread alert" : `${unread} unread alerts`;
  return (
    <div className="bell" ref={ref}>
      <button type="button" className="icon-button" aria-haspopup="true" aria-expanded={open} aria-label={`Alerts: ${label}`} onClick={() => setOpen((v) => !v)}>
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
          <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5-6.71V3a2 2 0 1 0-4 0v1.29A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z" />
        </svg>
        {unread > 0 && <span className="badge" data-testid="alert-count">{unread > 99 ? "99+" : unread}</span>}
      </button>
      {open && (
        <div className="bell-panel" role="dialog" aria-label="Alerts">
          <div className="bell-head">
            <strong>Alerts</strong>
            <span className="muted">{label}</span>
          </div>
          {loading && <p className="muted">Loading…</p>}
          {error && <p className="inline-error">{error}</p>}
          {!loading && alerts.length === 0 && <p className="muted">No alerts.</p>}
          <ul className="bell-list">
            {alerts.slice(0, 8).map((alert) => (
              <li key={alert.id} className={alert.acknowledged_at ? "read" : "unread"}>
                <div>
                  <strong>{alertTitle(alert.kind)}</strong>
                  <div className="small-text">{alertSummary(alert)}</div>
                </div>
                <AckButton alert={alert} />
              </li>
            ))}
          </ul>
          <Link to="/alerts" onClick={() => setOpen(false)}>All alerts</Link>
        </div>
      )}
    </div>
  );
}
