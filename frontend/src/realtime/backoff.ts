/** Exponential backoff for reconnecting: base × factor^attempt, capped, with a little jitter. */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  factor?: number;
  /** Fraction of the delay added or removed at random (0 turns jitter off). */
  jitter?: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: Required<Omit<BackoffOptions, "random">> = {
  baseMs: 1000,
  maxMs: 30000,
  factor: 2,
  jitter: 0.2,
};

export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs, maxMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const random = options.random ?? Math.random;
  const exponent = Math.max(0, Math.floor(attempt));
  const raw = Math.min(maxMs, baseMs * factor ** exponent);
  const spread = raw * jitter * (random() * 2 - 1);
  return Math.round(Math.min(maxMs, Math.max(0, raw + spread)));
}
