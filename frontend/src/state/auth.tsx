/** The signed-in session: token, user, the API client, and what happens when the session ends. */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { ApiClient } from "../api/client";
import { endpoints, type Endpoints } from "../api/endpoints";
import type { User } from "../api/types";
import type { RuntimeConfig } from "../config";

const STORAGE_KEY = "ems.session";
export const EXPIRED_MESSAGE = "Your session has expired. Please sign in again.";

export interface Session {
  token: string;
  user: User;
  expiresAt: number;
}

export interface AuthValue {
  config: RuntimeConfig;
  client: ApiClient;
  api: Endpoints;
  session: Session | null;
  user: User | null;
  notice: string | null;
  login: (username: string, password: string) => Promise<User>;
  logout: () => Promise<void>;
  setUser: (user: User) => void;
  expire: (message?: string) => void;
  clearNotice: () => void;
}

const AuthContext = createContext<AuthValue | null>(null);

function readSession(): Session | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Session;
    if (!parsed.token || !parsed.user || typeof parsed.expiresAt !== "number") return null;
    if (parsed.expiresAt <= Date.now()) return null;
    return parsed;
  } catch {
    return null;
  }
}

function writeSession(session: Session | null): void {
  try {
    if (session) window.localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    else window.localStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage may be unavailable (private mode); the session then lives in memory only */
  }
}

export function AuthProvider({ config, children }: { config: RuntimeConfig; children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => readSession());
  const [notice, setNotice] = useState<string | null>(() => {
    try {
      return window.localStorage.getItem(STORAGE_KEY) && !readSession() ? EXPIRED_MESSAGE : null;
    } catch {
      return null;
    }
  });
  // One client for the provider's life (the runtime config is loaded once, before the app starts); it
  // holds the token requests carry, which changes only in update(), before the session state does.
  const [client] = useState(() => new ApiClient(config.apiBaseUrl, { token: session?.token ?? null }));
  const api = useMemo(() => endpoints(client), [client]);

  const update = useCallback(
    (next: Session | null) => {
      client.setToken(next?.token ?? null);
      writeSession(next);
      setSession(next);
    },
    [client],
  );

  const expire = useCallback(
    (message: string = EXPIRED_MESSAGE) => {
      if (!client.token) return;
      update(null);
      setNotice(message);
    },
    [client, update],
  );
  useEffect(() => client.onUnauthorized(() => expire()), [client, expire]);

  // The token's own expiry ends the session even when no request notices it.
  useEffect(() => {
    if (!session) return;
    const left = session.expiresAt - Date.now();
    const timer = window.setTimeout(() => expire(), Math.max(0, Math.min(left, 2 ** 31 - 1)));
    return () => window.clearTimeout(timer);
  }, [session, expire]);

  // Refresh the stored user once at start (and find out early if the token is no longer valid).
  const checked = useRef(false);
  useEffect(() => {
    if (checked.current || !session) return;
    checked.current = true;
    api.me().then(
      (user) => setSession((s) => (s ? { ...s, user } : s)),
      () => undefined,
    );
  }, [api, session]);

  const login = useCallback(
    async (username: string, password: string) => {
      const result = await api.login(username, password);
      const next: Session = {
        token: result.access_token,
        user: result.user,
        expiresAt: Date.now() + Math.max(60, result.expires_in || 3600) * 1000,
      };
      update(next);
      setNotice(null);
      return result.user;
    },
    [api, update],
  );

  const logout = useCallback(async () => {
    try {
      if (client.token) await api.logout();
    } catch {
      /* signing out locally is what matters */
    }
    update(null);
    setNotice("You have signed out.");
  }, [api, client, update]);

  const setUser = useCallback(
    (user: User) => {
      setSession((s) => {
        if (!s) return s;
        const next = { ...s, user };
        writeSession(next);
        return next;
      });
    },
    [],
  );

  const value = useMemo<AuthValue>(
    () => ({
      config, client, api, session, user: session?.user ?? null, notice,
      login, logout, setUser, expire, clearNotice: () => setNotice(null),
    }),
    [config, client, api, session, notice, login, logout, setUser, expire],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

/** For screens that need a signed-in user. */
export function useSession(): AuthValue & { session: Session; user: User } {
  const value = useAuth();
  if (!value.session || !value.user) throw new Error("useSession without a session");
  return value as AuthValue & { session: Session; user: User };
}
