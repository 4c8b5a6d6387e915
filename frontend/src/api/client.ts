/** A small JSON client for the REST API: bearer token, the API's error body, session expiry. */

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: FieldError[];
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, details: FieldError[] = [], retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Send `body` (a string) as it is, with this Content-Type, instead of as JSON. */
  contentType?: string;
  /** Send the bearer token (default true); a 401 without a token is not a session expiry. */
  auth?: boolean;
  /** "json" (default) or "text" or "blob" for downloads. */
  as?: "json" | "text" | "blob";
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** The bearer token sent with authenticated calls until `setToken` changes it. */
  token?: string | null;
  fetchFn?: typeof fetch;
}

/** A page of a collection, as every list route answers it. */
interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

type UnauthorizedListener = (error: ApiError) => void;

const STATUS_MESSAGES: Record<number, string> = {
  400: "The request was not understood.",
  401: "You are not signed in.",
  403: "You are not allowed to do that.",
  404: "Not found.",
  409: "That conflicts with existing data.",
  413: "The request is too large.",
  422: "Some fields are not valid.",
  429: "Too many requests. Please wait a moment and try again.",
  502: "The server is not answering properly. Please try again.",
  503: "The service is temporarily unavailable. Please try again.",
};

function parseDetails(raw: unknown): FieldError[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((item): item is Record<string, unknown> => !!item && typeof item === "object")
    .map((item) => ({ field: String(item.field ?? ""), message: String(item.message ?? "") }));
}

/** Builds an ApiError from a failed response, using the API's `{"error": {...}}` body when present. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const retryHeader = response.headers.get("Retry-After");
  const retryAfter = retryHeader && /^\d+$/.test(retryHeader) ? Number(retryHeader) : null;
  const body = parseJson(await response.text().catch(() => ""));
  const error = body && typeof body === "object" ? (body as Record<string, unknown>).error : null;
  if (error && typeof error === "object") {
    const e = error as Record<string, unknown>;
    const message = typeof e.message === "string" && e.message ? e.message : STATUS_MESSAGES[response.status];
    return new ApiError(
      response.status,
      typeof e.code === "string" ? e.code : `http_${response.status}`,
      message ?? `Request failed (HTTP ${response.status}).`,
      parseDetails(e.details),
      retryAfter,
    );
  }
  const fallback = STATUS_MESSAGES[response.status] ?? `Request failed (HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}).`;
  return new ApiError(response.status, `http_${response.status}`, fallback, [], retryAfter);
}

function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Every line a person should read for an error: the message, then each `field: message`. */
export function describeError(error: unknown): { message: string; details: string[] } {
  if (error instanceof ApiError) {
    return {
      message: error.message,
      details: error.details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)),
    };
  }
  if (error instanceof Error) return { message: error.message, details: [] };
  return { message: String(error), details: [] };
}

export function buildUrl(base: string, path: string, query?: Query): string {
  const url = new URL(base.replace(/\/+$/, "") + (path.startsWith("/") ? path : `/${path}`));
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url.href;
}

/**
 * The REST client. It holds the session's token, outside React's state, so that every request, whenever
 * it starts, carries the current one.
 */
export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch | undefined;
  private currentToken: string | null;
  private readonly unauthorizedListeners = new Set<UnauthorizedListener>();

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.fetchFn = options.fetchFn;
    this.currentToken = options.token ?? null;
  }

  get token(): string | null {
    return this.currentToken;
  }

  setToken(token: string | null): void {
    this.currentToken = token;
  }

  /**
   * Calls `listener` when an authenticated call answers 401 while its token is still the current one:
   * the session has ended (a 401 without a token, or for a token replaced meanwhile, is not that).
   * Returns the unsubscribe function.
   */
  onUnauthorized(listener: UnauthorizedListener): () => void {
    this.unauthorizedListeners.add(listener);
    return () => {
      this.unauthorizedListeners.delete(listener);
    };
  }

  url(path: string, query?: Query): string {
    return buildUrl(this.baseUrl, path, query);
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const useAuth = options.auth !== false;
    const token = useAuth ? this.currentToken : null;
    const headers: Record<string, string> = { Accept: options.as === "text" || options.as === "blob" ? "*/*" : "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      body = options.contentType ? String(options.body) : JSON.stringify(options.body);
    }
    const fetchFn = this.fetchFn ?? fetch;
    let response: Response;
    try {
      response = await fetchFn(this.url(path, options.query), { method, headers, body, signal: options.signal });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
      throw new ApiError(0, "network_error", "Cannot reach the server. Check your connection and try again.");
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (response.status === 401 && token && token === this.currentToken) this.unauthorizedListeners.forEach((listener) => listener(error));
      throw error;
    }
    if (response.status === 204) return undefined as T;
    if (options.as === "text") return (await response.text()) as T;
    if (options.as === "blob") return (await response.blob()) as T;
    const text = await response.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, "invalid_response", "The server sent an answer that is not JSON.");
    }
  }

  get<T>(path: string, query?: Query, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", path, { ...options, query });
  }

  post<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", path, { ...options, body });
  }

  put<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("PUT", path, { ...options, body });
  }

  delete<T = void>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("DELETE", path, options);
  }

  /** Follows `next_cursor` up to `maxPages` pages and returns every item. */
  async all<T>(path: string, query: Query = {}, maxPages = 20): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < maxPages; page += 1) {
      const result: Page<T> = await this.get<Page<T>>(path, { ...query, cursor });
      items.push(...result.items);
      cursor = result.next_cursor ?? null;
      if (!cursor) break;
    }
    return items;
  }
}
