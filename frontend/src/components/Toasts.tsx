import { Link } from "react-router-dom";
import { alertTitle } from "../format";
import { useAlerts } from "../state/alerts";
import { AckButton, alertSummary } from "./AlertBell";

export function Toasts() {
  const { toasts, dismissToast } = useAlerts();
  return (
    <div className="toasts" aria-live="assertive" aria-relevant="additions">
      {toasts.map(({ key, alert }) => (
        <div key={key} className={`toast toast-${alert.kind}`} role="alert">
          <div className="toast-body">
            <strong>{alertTitle(alert.kind)}</strong>
            <p>{alertSummary(alert)}</p>
            <div className="toast-actions">
              <AckButton alert={alert} />
              <Link to={`/devices/${encodeURIComponent(alert.device_id)}`} onClick={() => dismissToast(key)}>View device</Link>
            </div>
          </div>
          <button type="button" className="close" aria-label="Dismiss" onClick={() => dismissToast(key)}>×</button>
        </div>
      ))}
    </div>
  );
}
