import { useState } from "react";

/** A destructive button that asks once more inline (no browser dialog). */
export function ConfirmButton({ label, confirmLabel = "Yes, delete", onConfirm, busyLabel = "Deleting…" }: {
  label: string;
  confirmLabel?: string;
  busyLabel?: string;
  onConfirm: () => Promise<void>;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (busy) return <span className="muted">{busyLabel}</span>;
  if (!asking) {
    return <button type="button" className="danger small" onClick={() => setAsking(true)}>{label}</button>;
  }
  return (
    <span className="confirm">
      <span>Sure?</span>
      <button
        type="button"
        className="danger small"
        autoFocus
        onClick={async () => {
          setBusy(true);
          try {
            await onConfirm();
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" className="secondary small" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}
