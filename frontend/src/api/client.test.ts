import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, buildUrl, describeError } from "./client";
import { segment } from "./endpoints";

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function client(fetchFn: typeof fetch, token: string | null = "tok") {
  const api = new ApiClient("http://api.test/api/", { token, fetchFn });
  const onUnauthorized = vi.fn();
  api.onUnauthorized(onUnauthorized);
  return { api, onUnauthorized };
}

describe("ApiClient", () => {
  it("sends the bearer token and JSON body, and parses the answer", async () => {
    const fetchFn = vi.fn(async () => jsonResponse(201, { id: "d1" }));
    const { api } = client(fetchFn as unknown as typeof fetch);
    const result = await api.post<{ id: string }>("/devices", { name: "Meter" });
    expect(result).toEqual({ id: "d1" });
    const [url, init] = fetchFn.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("http://api.test/api/devices");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok");
    expect(init.body).toBe('{"name":"Meter"}');
  });

  it("turns the API's error body into an ApiError with code, message and details", async () => {
    const body = {
      error: {
        code: "validation_error",
        message: "The request is not valid.",
        details: [
          { field: "username", message: "String should have at least 3 characters" },
          { field: "password", message: "String should have at least 8 characters" },
        ],
      },
    };
    const { api } = client((async () => jsonResponse(422, body)) as unknown as typeof fetch);
    const error = (await api.post("/auth/register", {}, { auth: false }).then(() => null, (e: ApiError) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.code).toBe("validation_error");
    expect(error.message).toBe("The request is not valid.");
    expect(describeError(error)).toEqual({
      message: "The request is not valid.",
      details: ["username: String should have at least 3 characters", "password: String should have at least 8 characters"],
    });
  });

  it("explains an error without the API's body by its status", async () => {
    const fetchFn = async () => new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" });
    const { api } = client(fetchFn as unknown as typeof fetch);
    const error = (await api.get("/devices").then(() => null, (e: ApiError) => e)) as ApiError;
    expect(error.code).toBe("http_502");
    expect(error.message).toMatch(/not answering/);
  });

  it("reads Retry-After of a throttled answer", async () => {
    const fetchFn = async () => jsonResponse(429, { error: { code: "throttled", message: "Slow down." } }, { "Retry-After": "7" });
    const { api } = client(fetchFn as unknown as typeof fetch);
    const error = (await api.get("/devices").then(() => null, (e: ApiError) => e)) as ApiError;
    expect(error.message).toBe("Slow down.");
    expect(error.retryAfter).toBe(7);
  });

  it("reports a network failure as an ApiError with status 0", async () => {
    const fetchFn = async () => {
      throw new TypeError("Failed to fetch");
    };
    const { api } = client(fetchFn as unknown as typeof fetch);
    const error = (await api.get("/devices").then(() => null, (e: ApiError) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/Cannot reach the server/);
  });

  it("calls onUnauthorized for a 401 on an authenticated call (session expiry)", async () => {
    const fetchFn = async () => jsonResponse(401, { error: { code: "unauthorized", message: "The token has expired." } });
    const { api, onUnauthorized } = client(fetchFn as unknown as typeof fetch);
    await expect(api.get("/devices")).rejects.toThrow("The token has expired.");
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(onUnauthorized.mock.calls[0][0]).toBeInstanceOf(ApiError);
  });

  it("does not end a new session for the 401 of a call made with the token it replaced", async () => {
    let answer: (response: Response) => void = () => undefined;
    const fetchFn = () => new Promise<Response>((resolve) => (answer = resolve));
    const { api, onUnauthorized } = client(fetchFn as unknown as typeof fetch, "old");
    const call = api.get("/devices");
    api.setToken("new");
    answer(jsonResponse(401, { error: { code: "unauthorized", message: "The token has expired." } }));
    await expect(call).rejects.toThrow("The token has expired.");
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it("does not treat a failed sign-in (401 without a token) as an expired session", async () => {
    const fetchFn = async () => jsonResponse(401, { error: { code: "unauthorized", message: "The username or password is wrong." } });
    const { api, onUnauthorized } = client(fetchFn as unknown as typeof fetch, null);
    await expect(api.post("/auth/login", { username: "a", password: "b" }, { auth: false })).rejects.toThrow("The username or password is wrong.");
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it("answers undefined for 204", async () => {
    const { api } = client((async () => new Response(null, { status: 204 })) as unknown as typeof fetch);
    await expect(api.post("/auth/logout")).resolves.toBeUndefined();
  });

  it("follows next_cursor to collect every page", async () => {
    const pages: Record<string, unknown> = {
      "": { items: [1, 2], next_cursor: "c2" },
      c2: { items: [3], next_cursor: null },
    };
    const fetchFn = vi.fn(async (url: string) => jsonResponse(200, pages[new URL(url).searchParams.get("cursor") ?? ""]));
    const { api } = client(fetchFn as unknown as typeof fetch);
    await expect(api.all<number>("/users", { limit: 2 })).resolves.toEqual([1, 2, 3]);
    expect(fetchFn).toHaveBeenCalledTimes(2);
  });
});

describe("buildUrl", () => {
  it("skips empty query values and encodes the rest", () => {
    expect(buildUrl("http://x/api", "/users", { q: "a b", cursor: null, limit: 5, empty: "" })).toBe("http://x/api/users?q=a+b&limit=5");
  });
});

describe("segment", () => {
  it("keeps an alert id's colons and escapes what a path segment cannot hold", () => {
    expect(segment("m-1:2026-11-23T10:00:00Z")).toBe("m-1:2026-11-23T10:00:00Z");
    expect(segment("a/b c?d#e")).toBe("a%2Fb%20c%3Fd%23e");
  });
});
