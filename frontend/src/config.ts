/** The runtime configuration, fetched at start so that one build serves every stage. */
export interface RuntimeConfig {
  apiBaseUrl: string;
  websocketUrl: string;
  stage: string;
}

function absoluteHttp(url: string, base: string): string {
  return new URL(url, base).href.replace(/\/+$/, "");
}

function absoluteWs(url: string, base: string): string {
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href.replace(/\/+$/, "");
}

/** Normalises a raw config: relative URLs are resolved against the page, trailing slashes dropped. */
export function normaliseConfig(raw: unknown, base: string): RuntimeConfig {
  if (!raw || typeof raw !== "object") throw new Error("runtime-config.json is not a JSON object.");
  const value = raw as Record<string, unknown>;
  if (typeof value.apiBaseUrl !== "string" || !value.apiBaseUrl) {
    throw new Error("runtime-config.json has no apiBaseUrl.");
  }
  if (typeof value.websocketUrl !== "string" || !value.websocketUrl) {
    throw new Error("runtime-config.json has no websocketUrl.");
  }
  return {
    apiBaseUrl: absoluteHttp(value.apiBaseUrl, base),
    websocketUrl: absoluteWs(value.websocketUrl, base),
    stage: typeof value.stage === "string" ? value.stage : "",
  };
}

export async function loadRuntimeConfig(
  fetchFn: typeof fetch = fetch,
  base: string = window.location.href,
): Promise<RuntimeConfig> {
  const response = await fetchFn(new URL("/runtime-config.json", base).href, { cache: "no-store" });
  if (!response.ok) throw new Error(`Could not load runtime-config.json (HTTP ${response.status}).`);
  return normaliseConfig(await response.json(), base);
}
