import { vi } from "vitest";

type Handler = (request: { method: string; url: URL; body: unknown }) => { status?: number; body?: unknown } | undefined;

/** A fetch stand-in that routes "METHOD /path" to handlers and records every call. */
export function fakeFetch(routes: Record<string, Handler>) {
  const calls: { method: string; path: string; body: unknown; headers: Record<string, string> }[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const headers = (init.headers ?? {}) as Record<string, string>;
    const json = (headers["Content-Type"] ?? "application/json").startsWith("application/json");
    const body = init.body ? (json ? JSON.parse(String(init.body)) : String(init.body)) : undefined;
    const path = url.pathname.replace(/^\/api/, "");
    calls.push({ method, path, body, headers });
    const handler = routes[`${method} ${path}`];
    const result = handler ? handler({ method, url, body }) : { status: 404, body: { error: { code: "not_found", message: "No such route." } } };
    const status = result?.status ?? 200;
    return new Response(status === 204 || result?.body === undefined ? null : JSON.stringify(result.body), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  });
  return { fn: fn as unknown as typeof fetch, calls };
}

export const CONFIG = { apiBaseUrl: "http://ems.test/api", websocketUrl: "ws://ems.test:8001", stage: "test" };

export function signIn(user = { id: "u1", username: "alice", role: "client", name: "Alice", email: null }) {
  window.localStorage.setItem("ems.session", JSON.stringify({ token: "tok", user, expiresAt: Date.now() + 3600_000 }));
  return user;
}
