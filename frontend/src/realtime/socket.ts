/** The WebSocket connection: status, keep-alive pings, automatic reconnects with backoff. */
import type { ClientFrame, ServerFrame } from "./frames";
import { backoffDelay, type BackoffOptions } from "./backoff";

export type SocketStatus = "connecting" | "open" | "reconnecting" | "closed";

export interface SocketLike {
  readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface RealtimeOptions {
  url: string;
  token: string;
  onFrame?: (frame: ServerFrame) => void;
  onStatus?: (status: SocketStatus, retryInMs: number | null) => void;
  /** Called after a connection opens that follows a lost one: fetch what was missed. */
  onReconnected?: () => void;
  /** Called when an attempt fails before opening (an expired token is refused at the handshake). */
  onConnectFailed?: (attempt: number) => void;
  pingIntervalMs?: number;
  backoff?: BackoffOptions;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
}

const OPEN = 1;
const MAX_OUTBOX = 50;

const browserTimers: Timers = {
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (h) => window.clearTimeout(h as number),
  setInterval: (fn, ms) => window.setInterval(fn, ms),
  clearInterval: (h) => window.clearInterval(h as number),
};

export class RealtimeSocket {
  private readonly options: RealtimeOptions;
  private readonly timers: Timers;
  private socket: SocketLike | null = null;
  private attempt = 0;
  private everOpened = false;
  private stopped = true;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private outbox: string[] = [];
  status: SocketStatus = "closed";

  constructor(options: RealtimeOptions) {
    this.options = options;
    this.timers = options.timers ?? browserTimers;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.onerror = null;
      socket.onopen = null;
      socket.close(1000, "bye");
    }
    this.setStatus("closed", null);
  }

  /** Reconnects at once (e.g. when the browser comes back online) instead of waiting out the backoff. */
  reconnectNow(): void {
    if (this.stopped || this.status === "open" || this.status === "connecting") return;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  /** Sends a frame now, or queues it until the connection opens; returns whether it went out now. */
  send(frame: ClientFrame): boolean {
    const data = JSON.stringify(frame);
    if (this.socket && this.socket.readyState === OPEN) {
      this.socket.send(data);
      return true;
    }
    if (frame.action !== "ping" && frame.action !== "chat.typing") {
      this.outbox.push(data);
      if (this.outbox.length > MAX_OUTBOX) this.outbox.shift();
    }
    return false;
  }

  private connect(): void {
    this.setStatus(this.everOpened || this.attempt > 0 ? "reconnecting" : "connecting", null);
    const url = `${this.options.url}${this.options.url.includes("?") ? "&" : "?"}token=${encodeURIComponent(this.options.token)}`;
    const create = this.options.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(url);
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      const wasReconnect = this.everOpened || this.attempt > 0;
      this.everOpened = true;
      this.attempt = 0;
      this.setStatus("open", null);
      this.startPings();
      const pending = this.outbox;
      this.outbox = [];
      for (const data of pending) socket.send(data);
      if (wasReconnect) this.options.onReconnected?.();
    };
    socket.onmessage = (event: MessageEvent) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && typeof frame.type === "string") this.options.onFrame?.(frame);
    };
    socket.onerror = () => {
      /* a close event follows */
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopPings();
      if (this.stopped) return;
      this.scheduleReconnect(opened);
    };
  }

  private scheduleReconnect(wasOpen: boolean): void {
    if (!wasOpen) this.options.onConnectFailed?.(this.attempt);
    const delay = backoffDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    this.setStatus("reconnecting", delay);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private startPings(): void {
    this.stopPings();
    const every = this.options.pingIntervalMs ?? 4 * 60 * 1000;
    this.pingTimer = this.timers.setInterval(() => this.send({ action: "ping" }), every);
  }

  private stopPings(): void {
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private clearTimers(): void {
    this.stopPings();
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setStatus(status: SocketStatus, retryInMs: number | null): void {
    this.status = status;
    this.options.onStatus?.(status, retryInMs);
  }
}
