import { useRealtime } from "../state/realtime";
import type { SocketStatus } from "../realtime/socket";

const LABELS: Record<SocketStatus, string> = {
  open: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

export function StatusLight() {
  const { status, retryInMs } = useRealtime();
  const label = status === "reconnecting" && retryInMs ? `Reconnecting in ${Math.max(1, Math.round(retryInMs / 1000))} s` : LABELS[status];
  return (
    <span className={`status-light status-${status}`} role="status" aria-live="polite" title={`Live updates: ${label}`} data-status={status}>
      <span className="dot" aria-hidden="true" />
      <span className="status-text">{label}</span>
    </span>
  );
}
