/** One WebSocket per signed-in session, shared by every screen that listens or sends. */
import { createContext, useCallback, useContext, useEffect, useEffectEvent, useMemo, useRef, useState, type ReactNode } from "react";
import type { ClientFrame, ServerFrame } from "../realtime/frames";
import { RealtimeSocket, type SocketStatus } from "../realtime/socket";
import { useAuth } from "./auth";

type Listener = (frame: ServerFrame) => void;
type ReconnectListener = () => void;

export interface RealtimeValue {
  status: SocketStatus;
  retryInMs: number | null;
  send: (frame: ClientFrame) => boolean;
  subscribe: (listener: Listener) => () => void;
  onReconnect: (listener: ReconnectListener) => () => void;
}

const RealtimeContext = createContext<RealtimeValue | null>(null);

export function RealtimeProvider({ children }: { children: ReactNode }) {
  const { config, session, api } = useAuth();
  const token = session?.token ?? null;
  const [status, setStatus] = useState<SocketStatus>("closed");
  const [retryInMs, setRetryInMs] = useState<number | null>(null);
  const listeners = useRef(new Set<Listener>());
  const reconnectListeners = useRef(new Set<ReconnectListener>());
  const socketRef = useRef<RealtimeSocket | null>(null);
  const lastCheck = useRef(0);

  useEffect(() => {
    if (!token) return;
    const socket = new RealtimeSocket({
      url: config.websocketUrl,
      token,
      onFrame: (frame) => listeners.current.forEach((listener) => listener(frame)),
      onStatus: (next, retry) => {
        setStatus(next);
        setRetryInMs(retry);
      },
      onReconnected: () => reconnectListeners.current.forEach((listener) => listener()),
      onConnectFailed: () => {
        // A refused handshake looks like any other failure: ask the API whether the session still holds.
        const now = Date.now();
        if (now - lastCheck.current < 15000) return;
        lastCheck.current = now;
        api.me().catch(() => undefined);
      },
    });
    socketRef.current = socket;
    socket.start();
    const online = () => socket.reconnectNow();
    window.addEventListener("online", online);
    return () => {
      window.removeEventListener("online", online);
      socket.stop();
      socketRef.current = null;
    };
  }, [config.websocketUrl, token, api]);

  const send = useCallback((frame: ClientFrame) => socketRef.current?.send(frame) ?? false, []);
  const subscribe = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);
  const onReconnect = useCallback((listener: ReconnectListener) => {
    reconnectListeners.current.add(listener);
    return () => {
      reconnectListeners.current.delete(listener);
    };
  }, []);

  const value = useMemo(() => ({ status, retryInMs, send, subscribe, onReconnect }), [status, retryInMs, send, subscribe, onReconnect]);
  return <RealtimeContext.Provider value={value}>{children}</RealtimeContext.Provider>;
}

export function useRealtime(): RealtimeValue {
  const value = useContext(RealtimeContext);
  if (!value) throw new Error("useRealtime outside RealtimeProvider");
  return value;
}

/** Calls `handler` (as of the latest render) for each server frame while the component is mounted. */
export function useFrames(handler: Listener): void {
  const { subscribe } = useRealtime();
  const onFrame = useEffectEvent(handler);
  useEffect(() => subscribe((frame) => onFrame(frame)), [subscribe]);
}
