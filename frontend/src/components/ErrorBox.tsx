import { useEffect, useRef } from "react";
import { describeError } from "../api/client";

/** The API's error message and each `field: message` detail, announced to screen readers. */
export function ErrorBox({ error, title, focus = false }: { error: unknown; title?: string; focus?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (focus && error) ref.current?.focus();
  }, [error, focus]);
  if (!error) return null;
  const { message, details } = describeError(error);
  return (
    <div className="error-box" role="alert" tabIndex={-1} ref={ref}>
      {title && <strong>{title} </strong>}
      <span className="error-message">{message}</span>
      {details.length > 0 && (
        <ul className="error-details">
          {details.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}
