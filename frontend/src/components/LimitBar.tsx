import { formatKwh } from "../format";

/** A bar of `value` against `limit` (value may be null: no data). */
export function LimitBar({ value, limit, label }: { value: number | null; limit: number; label: string }) {
  const ratio = value === null || limit <= 0 ? 0 : value / limit;
  const state = value === null ? "none" : ratio > 1 ? "over" : ratio > 0.8 ? "near" : "ok";
  return (
    <div className={`limit-bar limit-${state}`}>
      <div className="limit-bar-text">
        <span>{label}</span>
        <span>{value === null ? "no reading" : `${formatKwh(value, 3)} / ${formatKwh(limit)}`}</span>
      </div>
      <div className="limit-track" role="meter" aria-valuemin={0} aria-valuemax={limit} aria-valuenow={value ?? 0} aria-label={label}>
        <div className="limit-fill" style={{ width: `${Math.min(100, Math.round(ratio * 100))}%` }} />
      </div>
    </div>
  );
}
