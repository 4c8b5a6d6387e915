/** Alerts: the list from the API, new ones from the socket, toasts, and acknowledging. */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { describeError } from "../api/client";
import type { Alert } from "../api/types";
import { useAuth } from "./auth";
import { useFrames, useRealtime } from "./realtime";

export interface Toast {
  key: string;
  alert: Alert;
}

export interface AlertsValue {
  alerts: Alert[];
  unread: number;
  loading: boolean;
  error: string | null;
  toasts: Toast[];
  refresh: () => Promise<void>;
  acknowledge: (id: string) => Promise<void>;
  dismissToast: (key: string) => void;
}

const AlertsContext = createContext<AlertsValue | null>(null);
const TOAST_MS = 10000;

/** Unacknowledged first, then newest first. */
export function sortAlerts(alerts: Alert[]): Alert[] {
  return [...alerts].sort((a, b) => {
    const openA = a.acknowledged_at ? 1 : 0;
    const openB = b.acknowledged_at ? 1 : 0;
    if (openA !== openB) return openA - openB;
    return b.created_at.localeCompare(a.created_at);
  });
}

/** Adds or replaces alerts by id; an acknowledgement already known locally is kept. */
export function mergeAlerts(current: Alert[], incoming: Alert[]): Alert[] {
  const byId = new Map(current.map((a) => [a.id, a]));
  for (const alert of incoming) {
    const known = byId.get(alert.id);
    byId.set(alert.id, known && known.acknowledged_at && !alert.acknowledged_at ? { ...alert, acknowledged_at: known.acknowledged_at } : alert);
  }
  return sortAlerts([...byId.values()]);
}

export function unreadCount(alerts: Alert[]): number {
  return alerts.filter((a) => !a.acknowledged_at).length;
}

export function AlertsProvider({ children }: { children: ReactNode }) {
  const { api } = useAuth();
  const { onReconnect } = useRealtime();
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const known = useRef(new Set<string>());
  const loadedOnce = useRef(false);
  const timers = useRef(new Map<string, number>());

  const dismissToast = useCallback((key: string) => {
    setToasts((list) => list.filter((t) => t.key !== key));
    const timer = timers.current.get(key);
    if (timer) window.clearTimeout(timer);
    timers.current.delete(key);
  }, []);

  const showToast = useCallback(
    (alert: Alert) => {
      const key = `${alert.id}#${Date.now()}`;
      setToasts((list) => [...list.filter((t) => t.alert.id !== alert.id), { key, alert }].slice(-4));
      timers.current.set(key, window.setTimeout(() => dismissToast(key), TOAST_MS));
    },
    [dismissToast],
  );

  const received = useCallback(
    (items: Alert[]) => {
      // After a reconnect, alerts missed while offline are toasted too.
      const fresh = items.filter((a) => !a.acknowledged_at && !known.current.has(a.id));
      const firstLoad = !loadedOnce.current;
      items.forEach((a) => known.current.add(a.id));
      loadedOnce.current = true;
      setAlerts((current) => mergeAlerts(current, items));
      if (!firstLoad) fresh.slice(0, 3).forEach(showToast);
      setError(null);
    },
    [showToast],
  );

  // A promise chain: the state changes when the answer arrives (see refresh() in ./chat).
  const refresh = useCallback(
    () =>
      api
        .alerts()
        .then((page) => received(page.items), (e: unknown) => setError(describeError(e).message))
        .finally(() => setLoading(false)),
    [api, received],
  );

  useEffect(() => {
    void refresh();
  }, [refresh]);
  useEffect(() => onReconnect(() => void refresh()), [onReconnect, refresh]);
  useEffect(() => {
    const all = timers.current;
    return () => all.forEach((t) => window.clearTimeout(t));
  }, []);

  useFrames((frame) => {
    if (frame.type !== "alert" || !frame.alert?.id) return;
    const alert = frame.alert;
    const isNew = !known.current.has(alert.id);
    known.current.add(alert.id);
    setAlerts((current) => mergeAlerts(current, [alert]));
    if (isNew && !alert.acknowledged_at) showToast(alert);
  });

  const acknowledge = useCallback(
    async (id: string) => {
      const updated = await api.ackAlert(id);
      setAlerts((current) => sortAlerts(current.map((a) => (a.id === id ? updated : a))));
      setToasts((list) => list.filter((t) => t.alert.id !== id));
    },
    [api],
  );

  const value = useMemo<AlertsValue>(
    () => ({ alerts, unread: unreadCount(alerts), loading, error, toasts, refresh, acknowledge, dismissToast }),
    [alerts, loading, error, toasts, refresh, acknowledge, dismissToast],
  );
  return <AlertsContext.Provider value={value}>{children}</AlertsContext.Provider>;
}

export function useAlerts(): AlertsValue {
  const value = useContext(AlertsContext);
  if (!value) throw new Error("useAlerts outside AlertsProvider");
  return value;
}
