import type { components } from "../../api/schema";

/** A time-of-use tariff as the API takes it (and shows it: the output adds nothing). */
export type Tariff = components["schemas"]["Tariff-Input"];
export type ShownTariff = components["schemas"]["Tariff-Output"];

export interface RateDraft {
  start: string;
  price: string;
}

/** A tariff as typed: text fields, so that a half-typed price stays on screen. */
export interface TariffDraft {
  from: string;
  currency: string;
  rates: RateDraft[];
  weekend: boolean;
  weekendRates: RateDraft[];
}

const MAX_RATES_A_DAY = 48;

function rateDrafts(rates: { start: string; price_per_kwh: number }[]): RateDraft[] {
  return rates.map((r) => ({ start: r.start, price: String(r.price_per_kwh) }));
}

export function toDrafts(tariffs: readonly (Tariff | ShownTariff)[] | undefined): TariffDraft[] {
  return (tariffs ?? []).map((t) => ({
    from: t.from,
    currency: t.currency,
    rates: rateDrafts(t.rates),
    weekend: !!t.weekend_rates?.length,
    weekendRates: rateDrafts(t.weekend_rates ?? []),
  }));
}

/** A price as typed (a decimal comma too); NaN, which JSON sends as null and the API refuses with a reason. */
function price(value: string): number {
  const n = value.trim() === "" ? NaN : Number(value.replace(",", "."));
  return Number.isFinite(n) ? n : NaN;
}

function rates(drafts: RateDraft[]) {
  return drafts.map((r) => ({ start: r.start.trim(), price_per_kwh: price(r.price) }));
}

/** The request body's list: the API checks the rules (order, 00:00 first, prices) and says what is wrong. */
export function fromDrafts(drafts: TariffDraft[], fallbackCurrency: string | null): Tariff[] {
  return drafts.map((d) => ({
    from: d.from.trim(),
    currency: (d.currency.trim() || fallbackCurrency || "").toUpperCase(),
    rates: rates(d.rates),
    ...(d.weekend ? { weekend_rates: rates(d.weekendRates) } : {}),
  }));
}

/** Whether two lists say the same (the API shows `weekend_rates: null` where none were given). */
export function sameTariffs(a: readonly (Tariff | ShownTariff)[], b: readonly (Tariff | ShownTariff)[]): boolean {
  const norm = (list: readonly (Tariff | ShownTariff)[]) =>
    JSON.stringify(list.map((t) => ({ from: t.from, currency: t.currency, rates: t.rates, weekend_rates: t.weekend_rates ?? null })));
  return norm(a) === norm(b);
}

function nextDate(drafts: TariffDraft[]): string {
  const last = drafts[drafts.length - 1]?.from;
  const base = last && !Number.isNaN(Date.parse(last)) ? new Date(`${last}T00:00:00Z`) : new Date();
  if (last) base.setUTCMonth(base.getUTCMonth() + 1);
  return base.toISOString().slice(0, 10);
}

function RatesEditor({ label, idPrefix, rates: list, onChange }: { label: string; idPrefix: string; rates: RateDraft[]; onChange: (rates: RateDraft[]) => void }) {
  const set = (i: number, patch: Partial<RateDraft>) => onChange(list.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset className="rates">
      <legend>{label}</legend>
      <table>
        <thead>
          <tr><th scope="col">From (local time)</th><th scope="col">Price per kWh</th><th scope="col"><span className="sr-only">Remove</span></th></tr>
        </thead>
        <tbody>
          {list.map((r, i) => (
            <tr key={i}>
              <td>
                <input
                  id={`${idPrefix}-start-${i}`}
                  aria-label={`${label}: rate ${i + 1} starts at`}
                  inputMode="numeric"
                  placeholder="HH:MM"
                  maxLength={5}
                  value={r.start}
                  readOnly={i === 0}
                  onChange={(e) => set(i, { start: e.target.value })}
                />
              </td>
              <td>
                <input
                  aria-label={`${label}: rate ${i + 1} price per kWh`}
                  inputMode="decimal"
                  value={r.price}
                  onChange={(e) => set(i, { price: e.target.value })}
                />
              </td>
              <td>
                {i > 0 && (
                  <button type="button" className="secondary small" aria-label={`${label}: remove rate ${i + 1}`} onClick={() => onChange(list.filter((_, j) => j !== i))}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button
        type="button"
        className="secondary small"
        disabled={list.length >= MAX_RATES_A_DAY}
        onClick={() => onChange([...list, { start: list.length ? "" : "00:00", price: "" }])}
      >
        Add a rate
      </button>
    </fieldset>
  );
}

/**
 * The device's time-of-use tariffs: each from a local date until the next one's, its rates a step
 * function over the local day (the first at 00:00), with other rates on weekends when wanted.
 */
export function TariffEditor({ value, onChange, currency }: { value: TariffDraft[]; onChange: (drafts: TariffDraft[]) => void; currency: string }) {
  const set = (i: number, patch: Partial<TariffDraft>) => onChange(value.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  const add = () =>
    onChange([...value, { from: nextDate(value), currency: currency.trim().toUpperCase(), rates: [{ start: "00:00", price: "" }], weekend: false, weekendRates: [{ start: "00:00", price: "" }] }]);
  return (
    <fieldset className="tariff-editor" aria-labelledby="tariffs-title">
      <legend id="tariffs-title">Time-of-use tariffs</legend>
      <p className="muted small-text">
        Each tariff applies from local midnight of its date until the next one's; history is costed at the tariff of its own time.
        Before the first (or with none), the flat tariff above applies.
      </p>
      {value.length === 0 && <p className="muted">No time-of-use tariffs.</p>}
      {value.map((t, i) => (
        <section key={i} className="tariff card-inner" aria-label={`Tariff ${i + 1}`}>
          <div className="form-grid">
            <div className="field">
              <label htmlFor={`tariff-${i}-from`}>Tariff {i + 1} from</label>
              <input id={`tariff-${i}-from`} type="date" value={t.from} onChange={(e) => set(i, { from: e.target.value })} required />
            </div>
            <div className="field">
              <label htmlFor={`tariff-${i}-currency`}>Tariff {i + 1} currency</label>
              <input id={`tariff-${i}-currency`} value={t.currency} maxLength={3} placeholder="e.g. EUR" onChange={(e) => set(i, { currency: e.target.value })} />
            </div>
          </div>
          <RatesEditor label={`Tariff ${i + 1} rates`} idPrefix={`tariff-${i}`} rates={t.rates} onChange={(rates) => set(i, { rates })} />
          <label className="checkbox">
            <input type="checkbox" checked={t.weekend} onChange={(e) => set(i, { weekend: e.target.checked })} />
            Other rates on Saturdays and Sundays
          </label>
          {t.weekend && (
            <RatesEditor label={`Tariff ${i + 1} weekend rates`} idPrefix={`tariff-${i}-weekend`} rates={t.weekendRates} onChange={(weekendRates) => set(i, { weekendRates })} />
          )}
          <button type="button" className="secondary small" onClick={() => onChange(value.filter((_, j) => j !== i))}>
            Remove tariff {i + 1}
          </button>
        </section>
      ))}
      <button type="button" className="secondary" onClick={add}>Add a tariff</button>
    </fieldset>
  );
}
