import { useCallback, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import type { ApiKeyCreated, Device, DeviceChanges, NewDevice, User } from "../../api/types";
import { ConfirmButton } from "../../components/ConfirmButton";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useDebounced, useLoad } from "../../components/hooks";
import { formatDateTime } from "../../format";
import { useSession } from "../../state/auth";
import { TariffEditor, fromDrafts, sameTariffs, toDrafts, type TariffDraft } from "./TariffEditor";

interface DeviceForm {
  id: string;
  serial: string;
  name: string;
  description: string;
  address: string;
  max_hourly_kwh: string;
  timezone: string;
  tariff_per_kwh: string;
  currency: string;
  tariffs: TariffDraft[];
  reading_kind: ReadingKind;
  register_max_kwh: string;
}

type ReadingKind = NonNullable<NewDevice["reading_kind"]>;

function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function zones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  } catch {
    return [];
  }
}

function toForm(device: Device | null): DeviceForm {
  return {
    id: device?.id ?? "",
    serial: device?.serial ?? "",
    name: device?.name ?? "",
    description: device?.description ?? "",
    address: device?.address ?? "",
    max_hourly_kwh: device ? String(device.max_hourly_kwh) : "",
    timezone: device?.timezone ?? browserZone(),
    tariff_per_kwh: device?.tariff_per_kwh == null ? "" : String(device.tariff_per_kwh),
    currency: device?.currency ?? "",
    tariffs: toDrafts(device?.tariffs),
    reading_kind: device?.reading_kind ?? "interval",
    register_max_kwh: device?.register_max_kwh == null ? "" : String(device.register_max_kwh),
  };
}

/** A number as typed (a decimal comma too); NaN when it is not one, which JSON sends as null and the API refuses. */
function number(value: string): number {
  const n = value.trim() === "" ? NaN : Number(value.replace(",", "."));
  return Number.isFinite(n) ? n : NaN;
}

type DeviceFields = Required<Omit<NewDevice, "id" | "owner_ids">>;

function fields(form: DeviceForm): DeviceFields {
  return {
    serial: form.serial.trim() || null,
    name: form.name.trim(),
    description: form.description.trim(),
    address: form.address.trim(),
    max_hourly_kwh: number(form.max_hourly_kwh),
    timezone: form.timezone.trim(),
    tariff_per_kwh: form.tariff_per_kwh.trim() === "" ? null : number(form.tariff_per_kwh),
    currency: form.currency.trim() ? form.currency.trim().toUpperCase() : null,
    tariffs: fromDrafts(form.tariffs, form.currency.trim() || null),
    reading_kind: form.reading_kind,
    // A maximum only means something for a register; an empty field is none.
    register_max_kwh: form.reading_kind === "register" && form.register_max_kwh.trim() !== "" ? number(form.register_max_kwh) : null,
  };
}

/** A new device's request body: everything given (the API makes an id when none is). */
export function newDevice(form: DeviceForm, ownerIds: string[]): NewDevice {
  const id = form.id.trim();
  return { ...(id ? { id } : {}), ...fields(form), owner_ids: ownerIds };
}

/** An edit's request body: only the fields that changed (null empties the tariff or the currency). */
export function deviceChanges(form: DeviceForm, original: Device): DeviceChanges {
  const body = fields(form);
  const keys = Object.keys(body) as (keyof DeviceFields)[];
  const changed = (key: keyof DeviceFields) => (key === "tariffs" ? !sameTariffs(body.tariffs, original.tariffs ?? []) : body[key] !== original[key]);
  return Object.fromEntries(keys.filter(changed).map((key) => [key, body[key]]));
}

/** A user as shown when only the id is known (a deleted one, or one that cannot be read). */
function unknownUser(id: string): User {
  return { id, username: id, name: "", email: null, role: "client" } as User;
}

/**
 * The owners, then the users whose username starts with what is typed (a page of 20: the user list is
 * never read whole); each with a checkbox that adds or removes it.
 */
function OwnerPicker({ selected, onToggle, busy }: { selected: string[]; onToggle: (user: User, on: boolean) => void; busy?: string | null }) {
  const { api } = useSession();
  const [filter, setFilter] = useState("");
  const q = useDebounced(filter.trim(), 250);
  const found = useLoad(useCallback(() => api.listUsers({ q: q || undefined, limit: 20 }), [api, q]));
  const ownerKey = selected.join(",");
  const owners = useLoad(useCallback(
    () => Promise.all(ownerKey.split(",").filter(Boolean).map((id) => api.getUser(id).catch(() => unknownUser(id)))),
    [api, ownerKey],
  ));
  const matches = found.data?.items ?? [];
  const listed = new Set(matches.map((u) => u.id));
  const shown = [...(owners.data ?? []).filter((u) => selected.includes(u.id) && !listed.has(u.id)), ...matches];
  return (
    <fieldset className="owner-picker">
      <legend>Owners</legend>
      <label htmlFor="owner-filter" className="sr-only">Find users</label>
      <input id="owner-filter" type="search" placeholder="Find users" value={filter} onChange={(e) => setFilter(e.target.value)} onKeyDown={(e) => e.key === "Enter" && e.preventDefault()} />
      <ErrorBox error={found.error} />
      <ul>
        {shown.map((u) => (
          <li key={u.id}>
            <label className="checkbox">
              <input type="checkbox" checked={selected.includes(u.id)} disabled={busy === u.id} onChange={(e) => onToggle(u, e.target.checked)} />
              {u.name || u.username} <span className="muted">({u.username}{u.role === "admin" ? ", admin" : ""})</span>
            </label>
          </li>
        ))}
        {found.loading && !found.data && <li className="muted">Finding users…</li>}
        {found.data && shown.length === 0 && <li className="muted">No users found.</li>}
        {found.data?.next_cursor && <li className="muted">More users: type the start of a username.</li>}
      </ul>
    </fieldset>
  );
}

function ApiKeys({ deviceId }: { deviceId: string }) {
  const { api } = useSession();
  const keys = useLoad(useCallback(() => api.listApiKeys(deviceId), [api, deviceId]));
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [copied, setCopied] = useState(false);

  const create = async () => {
    setError(null);
    setCopied(false);
    try {
      const key = await api.createApiKey(deviceId);
      setCreated(key);
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section className="card" aria-labelledby="keys-title">
      <div className="section-head">
        <h2 id="keys-title">API keys</h2>
        <button type="button" onClick={create}>Create API key</button>
      </div>
      <p className="muted small-text">A meter sends readings to <code>POST /api/readings</code> with its key in the <code>X-Api-Key</code> header.</p>
      <ErrorBox error={error} />
      {created && (
        <div className="secret" role="status">
          <p><strong>New key {created.key_id}.</strong> Copy it now: it is shown only once.</p>
          <div className="secret-row">
            <code data-testid="new-api-key">{created.api_key}</code>
            <button
              type="button"
              className="secondary small"
              onClick={async () => {
                try {
                  await navigator.clipboard.writeText(created.api_key);
                  setCopied(true);
                } catch {
                  setCopied(false);
                }
              }}
            >
              {copied ? "Copied" : "Copy"}
            </button>
            <button type="button" className="secondary small" onClick={() => setCreated(null)}>Done</button>
          </div>
        </div>
      )}
      <ErrorBox error={keys.error} />
      {keys.loading && !keys.data && <Spinner label="Loading keys…" />}
      {keys.data && keys.data.items.length === 0 && <p className="muted">No keys.</p>}
      {keys.data && keys.data.items.length > 0 && (
        <ul className="key-list">
          {keys.data.items.map((k) => (
            <li key={k.key_id}>
              <code>{k.key_id}</code>
              <span className="muted small-text">created {formatDateTime(k.created_at)}</span>
              <ConfirmButton
                label="Revoke"
                confirmLabel="Yes, revoke"
                busyLabel="Revoking…"
                onConfirm={async () => {
                  setError(null);
                  try {
                    await api.revokeApiKey(deviceId, k.key_id);
                    keys.setData((page) => page && { ...page, items: page.items.filter((x) => x.key_id !== k.key_id) });
                  } catch (e) {
                    setError(e);
                  }
                }}
              />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export default function DeviceEditPage() {
  const { deviceId } = useParams();
  const isNew = !deviceId;
  const { api } = useSession();
  const navigate = useNavigate();
  const device = useLoad(useCallback(() => (deviceId ? api.getDevice(deviceId) : Promise.resolve(null)), [api, deviceId]));
  // The form shows the device as loaded (or saved) until the person changes a field.
  const [edited, setEdited] = useState<DeviceForm | null>(null);
  const form = edited ?? toForm(device.data);
  // A new device's owners are picked before it exists; an existing device's are its own.
  const [newOwners, setNewOwners] = useState<string[]>([]);
  const owners = isNew ? newOwners : device.data?.owner_ids ?? [];
  const [error, setError] = useState<unknown>(null);
  const [ownerError, setOwnerError] = useState<unknown>(null);
  const [ownerBusy, setOwnerBusy] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const zoneList = useMemo(() => zones(), []);

  const set = (key: keyof DeviceForm) => (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>) => setEdited({ ...form, [key]: e.target.value });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaved(null);
    setSaving(true);
    try {
      if (isNew) {
        const created = await api.createDevice(newDevice(form, owners));
        // The same page may stay mounted for the new device's route: it then shows the device as created.
        setEdited(null);
        navigate(`/admin/devices/${encodeURIComponent(created.id)}`, { replace: true, state: { created: true } });
      } else if (device.data) {
        const changes = deviceChanges(form, device.data);
        if (Object.keys(changes).length) device.setData(await api.updateDevice(device.data.id, changes));
        setEdited(null);
        setSaved("Saved.");
      }
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  };

  const toggleOwner = async (user: User, on: boolean) => {
    setOwnerError(null);
    if (isNew) {
      setNewOwners((list) => (on ? [...list, user.id] : list.filter((id) => id !== user.id)));
      return;
    }
    setOwnerBusy(user.id);
    try {
      device.setData(on ? await api.addOwner(deviceId, user.id) : await api.removeOwner(deviceId, user.id));
    } catch (e) {
      setOwnerError(e);
    } finally {
      setOwnerBusy(null);
    }
  };

  if (!isNew && device.loading && !device.data) return <Spinner label="Loading the device…" />;
  if (!isNew && device.error) return <div className="page"><ErrorBox error={device.error} /><Link to="/admin/devices">Back to devices</Link></div>;

  return (
    <div className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumb">
        <Link to="/admin/devices">Devices</Link> / <span>{isNew ? "New device" : device.data?.name}</span>
      </nav>
      <header className="page-head">
        <h1>{isNew ? "New device" : `Edit ${device.data?.name}`}</h1>
        {!isNew && <div className="head-aside"><Link className="button secondary small" to={`/devices/${encodeURIComponent(deviceId)}`}>Charts</Link></div>}
      </header>
      <div className="grid two">
        <form className="card form" onSubmit={submit} aria-label="Device">
          <ErrorBox error={error} focus />
          {saved && <div className="success" role="status">{saved}</div>}
          <div className="form-grid">
            {isNew && (
              <div className="field">
                <label htmlFor="dev-id">Meter id (optional)</label>
                <input id="dev-id" value={form.id} onChange={set("id")} placeholder="made for you when empty" />
              </div>
            )}
            <div className="field">
              <label htmlFor="dev-name">Name</label>
              <input id="dev-name" value={form.name} onChange={set("name")} required autoFocus />
            </div>
            <div className="field">
              <label htmlFor="dev-serial">Serial number</label>
              <input id="dev-serial" value={form.serial} onChange={set("serial")} placeholder="none" />
            </div>
            <div className="field">
              <label htmlFor="dev-limit">Limit per hour (kWh)</label>
              <input id="dev-limit" inputMode="decimal" value={form.max_hourly_kwh} onChange={set("max_hourly_kwh")} required />
            </div>
            <div className="field">
              <label htmlFor="dev-timezone">Time zone</label>
              <input id="dev-timezone" list="zones" value={form.timezone} onChange={set("timezone")} required />
              <datalist id="zones">{zoneList.map((z) => <option key={z} value={z} />)}</datalist>
            </div>
            <div className="field">
              <label htmlFor="dev-tariff">Tariff per kWh</label>
              <input id="dev-tariff" inputMode="decimal" value={form.tariff_per_kwh} onChange={set("tariff_per_kwh")} placeholder="none" />
            </div>
            <div className="field">
              <label htmlFor="dev-currency">Currency</label>
              <input id="dev-currency" value={form.currency} onChange={set("currency")} maxLength={3} placeholder="e.g. EUR" />
            </div>
            <div className="field">
              <label htmlFor="dev-kind">Readings are</label>
              <select id="dev-kind" value={form.reading_kind} onChange={set("reading_kind")} aria-describedby="dev-kind-help">
                <option value="interval">the energy of each interval</option>
                <option value="register">the meter&apos;s running register</option>
              </select>
              <small id="dev-kind-help" className="muted">Fixed from the device&apos;s first reading on.</small>
            </div>
            {form.reading_kind === "register" && (
              <div className="field">
                <label htmlFor="dev-register-max">Register rolls over at (kWh)</label>
                <input id="dev-register-max" inputMode="decimal" value={form.register_max_kwh} onChange={set("register_max_kwh")} placeholder="never" />
              </div>
            )}
            <div className="field wide">
              <label htmlFor="dev-address">Address</label>
              <input id="dev-address" value={form.address} onChange={set("address")} />
            </div>
            <div className="field wide">
              <label htmlFor="dev-description">Description</label>
              <textarea id="dev-description" rows={2} value={form.description} onChange={set("description")} />
            </div>
          </div>
          <TariffEditor value={form.tariffs} onChange={(tariffs) => setEdited({ ...form, tariffs })} currency={form.currency} />
          {isNew && <OwnerPicker selected={owners} onToggle={toggleOwner} />}
          <div className="actions">
            <button type="submit" disabled={saving}>{saving ? "Saving…" : isNew ? "Create device" : "Save"}</button>
          </div>
        </form>
        {!isNew && (
          <div className="stack">
            <section className="card" aria-labelledby="owners-title">
              <h2 id="owners-title">Owners</h2>
              <ErrorBox error={ownerError} />
              <OwnerPicker selected={owners} onToggle={toggleOwner} busy={ownerBusy} />
            </section>
            <ApiKeys deviceId={deviceId} />
          </div>
        )}
      </div>
    </div>
  );
}
