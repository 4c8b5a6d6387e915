import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link } from "react-router-dom";
import type { FleetRow, FleetState, FleetSummary } from "../../api/types";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useDebounced } from "../../components/hooks";
import { LimitBar } from "../../components/LimitBar";
import { formatDateTime, formatKwh, formatMoney, timeAgo } from "../../format";
import { useAlerts } from "../../state/alerts";
import { useSession } from "../../state/auth";
import { useFrames, useRealtime } from "../../state/realtime";

const PAGE_SIZE = 50;
/** Live changes (alerts, readings) refresh the first page once they have been quiet this long… */
const LIVE_QUIET_MS = 300;
/** …and never sooner than this after the previous fleet request. */
const LIVE_GAP_MS = 2000;
const SEARCH_DEBOUNCE_MS = 300;
const MAX_QUERY = 64;

const STATES: { value: FleetState; label: string }[] = [
  { value: "over_limit", label: "Over the limit" },
  { value: "silent", label: "Silent" },
  { value: "never_reported", label: "Never reported" },
  { value: "reporting", label: "Reporting" },
];

const PILLS: Record<FleetState, { className: string; label: string }> = {
  over_limit: { className: "pill danger", label: "Over limit" },
  silent: { className: "pill warn", label: "Silent" },
  never_reported: { className: "pill info", label: "Never reported" },
  reporting: { className: "pill ok", label: "Reporting" },
};

interface Filter {
  state?: FleetState;
  q?: string;
}

/** The rows shown for one filter: its first page and the pages "Load more" appended. */
interface Listing {
  filter: Filter;
  items: FleetRow[];
  nextCursor: string | null;
  pages: number;
}

function appendRows(rows: FleetRow[], more: FleetRow[]): FleetRow[] {
  const known = new Set(rows.map((r) => r.device_id));
  return [...rows, ...more.filter((r) => !known.has(r.device_id))];
}

function Stat({ id, label, value, tone }: { id: keyof FleetSummary; label: string; value: number | undefined; tone?: "up" | "warn" }) {
  return (
    <div className="stat" data-testid={`fleet-${id}`}>
      <span className="stat-label">{label}</span>
      <span className={`stat-value ${value && tone ? tone : ""}`}>{value === undefined ? "—" : value.toLocaleString()}</span>
    </div>
  );
}

export default function FleetPage() {
  const { api } = useSession();
  const { onReconnect } = useRealtime();
  const { unread } = useAlerts();
  const [state, setState] = useState<FleetState | "">("");
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), SEARCH_DEBOUNCE_MS);
  const filter = useMemo<Filter>(() => ({ state: state || undefined, q: q || undefined }), [state, q]);
  const [reloads, setReloads] = useState(0);

  const [summary, setSummary] = useState<FleetSummary | null>(null);
  const [listing, setListing] = useState<Listing | null>(null);
  const [failure, setFailure] = useState<{ filter: Filter; error: unknown } | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreFailure, setMoreFailure] = useState<{ filter: Filter; error: unknown } | null>(null);

  // Requests are numbered: the counts shown are from the latest answer, whichever request it was.
  const requests = useRef(0);
  const summaryFrom = useRef(0);
  const lastRequestAt = useRef(0);
  const latestFilter = useRef(filter);
  const liveTimer = useRef<number | null>(null);

  const request = useCallback(
    async (asked: Filter, cursor?: string) => {
      const number = ++requests.current;
      lastRequestAt.current = Date.now();
      const page = await api.fleet({ ...asked, cursor, limit: PAGE_SIZE });
      if (number > summaryFrom.current) {
        summaryFrom.current = number;
        setSummary(page.summary);
      }
      return page;
    },
    [api],
  );

  // The first page, whenever the filter changes (the list starts again) or Refresh is pressed.
  useEffect(() => {
    latestFilter.current = filter;
    let current = true;
    request(filter).then(
      (page) => {
        if (!current) return;
        setListing({ filter, items: page.items, nextCursor: page.next_cursor, pages: 1 });
        setFailure(null);
      },
      (error: unknown) => {
        if (current) setFailure({ filter, error });
      },
    );
    return () => {
      current = false;
    };
  }, [request, filter, reloads]);

  // Live: the first page again, for the filter shown then. Rows stay in place when more pages are loaded.
  const refreshLive = useCallback(async () => {
    const asked = latestFilter.current;
    try {
      const page = await request(asked);
      setListing((old) => {
        if (!old || old.filter !== asked) return old;
        if (old.pages === 1) return { ...old, items: page.items, nextCursor: page.next_cursor };
        const fresh = new Map(page.items.map((r) => [r.device_id, r]));
        return { ...old, items: old.items.map((r) => fresh.get(r.device_id) ?? r) };
      });
    } catch {
      // The rows and counts shown stay; the next change or Refresh asks again.
    }
  }, [request]);

  const scheduleLive = useCallback(() => {
    if (liveTimer.current !== null) return;
    const wait = Math.max(LIVE_QUIET_MS, lastRequestAt.current + LIVE_GAP_MS - Date.now());
    liveTimer.current = window.setTimeout(() => {
      liveTimer.current = null;
      void refreshLive();
    }, wait);
  }, [refreshLive]);

  useEffect(
    () => () => {
      if (liveTimer.current !== null) window.clearTimeout(liveTimer.current);
    },
    [],
  );

  useFrames((frame) => {
    if (frame.type === "alert" || frame.type === "reading") scheduleLive();
  });
  useEffect(() => onReconnect(scheduleLive), [onReconnect, scheduleLive]);

  // An alert acknowledged elsewhere on this screen (bell, toast) lowers the open alerts.
  const unreadBefore = useRef(unread);
  useEffect(() => {
    if (unread < unreadBefore.current) scheduleLive();
    unreadBefore.current = unread;
  }, [unread, scheduleLive]);

  const loadMore = async () => {
    if (!listing?.nextCursor) return;
    const { filter: asked, nextCursor } = listing;
    setLoadingMore(true);
    setMoreFailure(null);
    try {
      const page = await request(asked, nextCursor);
      // A page for another filter, or after a live refresh replaced the list, is dropped.
      setListing((old) =>
        old && old.filter === asked && old.nextCursor === nextCursor
          ? { ...old, items: appendRows(old.items, page.items), nextCursor: page.next_cursor, pages: old.pages + 1 }
          : old,
      );
    } catch (e) {
      setMoreFailure({ filter: asked, error: e });
    } finally {
      setLoadingMore(false);
    }
  };

  const shown = listing && listing.filter === filter ? listing : null;
  const error = failure && failure.filter === filter ? failure.error : null;
  const moreError = moreFailure && moreFailure.filter === filter ? moreFailure.error : null;
  const filtered = Boolean(filter.state || filter.q);
  const stateLabel = STATES.find((s) => s.value === filter.state)?.label;

  return (
    <div className="page">
      <header className="page-head">
        <h1>Fleet</h1>
        <div className="head-aside">
          <button type="button" className="secondary small" onClick={() => setReloads((n) => n + 1)}>Refresh</button>
          <Link className="button small" to="/admin/devices/new">New device</Link>
        </div>
      </header>
      <div className="cards">
        <Stat id="devices" label="Devices" value={summary?.devices} />
        <Stat id="reporting" label="Reporting" value={summary?.reporting} />
        <Stat id="over_limit" label="Over the limit" value={summary?.over_limit} tone="up" />
        <Stat id="silent" label="Silent" value={summary?.silent} tone="warn" />
        <Stat id="never_reported" label="Never reported" value={summary?.never_reported} />
        <Stat id="open_alerts" label="Open alerts" value={summary?.open_alerts} tone="up" />
      </div>
      <form className="range-form fleet-filters" role="search" aria-label="Filter the fleet" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="fleet-search">Search</label>
          <input id="fleet-search" type="search" placeholder="Name starts with…" maxLength={MAX_QUERY} value={search} onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="fleet-state">State</label>
          <select id="fleet-state" value={state} onChange={(e) => setState(e.target.value as FleetState | "")}>
            <option value="">All states</option>
            {STATES.map((s) => (
              <option key={s.value} value={s.value}>{summary ? `${s.label} (${summary[s.value].toLocaleString()})` : s.label}</option>
            ))}
          </select>
        </div>
      </form>
      <ErrorBox error={error} />
      {!shown && !error && <Spinner label="Loading the fleet…" />}
      {shown && shown.items.length === 0 && (
        filtered ? (
          <div className="card empty"><p>No devices match{filter.q ? ` “${filter.q}”` : ""}{stateLabel ? ` in the state “${stateLabel}”` : ""}.</p></div>
        ) : (
          <div className="card empty"><p>No devices yet. <Link to="/admin/devices/new">Create the first one</Link>.</p></div>
        )
      )}
      {shown && shown.items.length > 0 && (
        <div className="table-wrap card">
          <table className="fleet-table">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Last reading</th>
                <th scope="col">Today</th>
                <th scope="col">This hour against the limit</th>
                <th scope="col">State</th>
                <th scope="col">Open alerts</th>
              </tr>
            </thead>
            <tbody>
              {shown.items.map((row) => (
                <tr key={row.device_id} data-device-id={row.device_id} data-state={row.state}>
                  <td data-label="Device">
                    <Link to={`/devices/${encodeURIComponent(row.device_id)}`}>{row.name}</Link>
                    <div className="muted small-text">{row.device_id}</div>
                  </td>
                  <td data-label="Last reading">
                    {row.last_reading_at ? <span title={formatDateTime(row.last_reading_at)}>{timeAgo(row.last_reading_at)}</span> : <span className="muted">never</span>}
                  </td>
                  <td data-label="Today">
                    {row.today_kwh === null ? <span className="muted">no readings</span> : formatKwh(row.today_kwh, 3)}
                    {row.today_cost !== null && <span className="muted small-text" data-testid="today-cost"> · {formatMoney(row.today_cost, row.currency)}</span>}
                  </td>
                  <td data-label="This hour" className="bar-cell"><LimitBar label="" value={row.hour_kwh} limit={row.max_hourly_kwh} /></td>
                  <td data-label="State"><span className={PILLS[row.state].className}>{PILLS[row.state].label}</span></td>
                  <td data-label="Open alerts">{row.open_alerts ? <Link to="/alerts" className="pill danger">{row.open_alerts}</Link> : <span className="muted">0</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {loadingMore && <Spinner label="Loading more devices…" />}
        </div>
      )}
      <ErrorBox error={moreError} />
      {shown?.nextCursor && !loadingMore && <button type="button" className="secondary" onClick={() => void loadMore()}>Load more</button>}
    </div>
  );
}
