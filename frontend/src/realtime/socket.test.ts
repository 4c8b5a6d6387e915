import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket } from "../test/fakeSocket";
import { RealtimeSocket, type SocketStatus } from "./socket";

describe("RealtimeSocket", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  function start(extra: Partial<ConstructorParameters<typeof RealtimeSocket>[0]> = {}) {
    const statuses: [SocketStatus, number | null][] = [];
    const frames: unknown[] = [];
    const onReconnected = vi.fn();
    const socket = new RealtimeSocket({
      url: "ws://localhost:8001",
      token: "a b",
      createSocket: (url) => new FakeSocket(url),
      onStatus: (s, r) => statuses.push([s, r]),
      onFrame: (f) => frames.push(f),
      onReconnected,
      backoff: { jitter: 0 },
      pingIntervalMs: 1000,
      ...extra,
    });
    socket.start();
    return { socket, statuses, frames, onReconnected };
  }

  it("connects with the token in the query string and reports its status", () => {
    const { statuses } = start();
    expect(FakeSocket.latest().url).toBe("ws://localhost:8001?token=a%20b");
    FakeSocket.latest().open();
    expect(statuses.map(([s]) => s)).toEqual(["connecting", "open"]);
  });

  it("reconnects with exponential backoff and fetches missed data after reconnecting", () => {
    const { statuses, onReconnected } = start();
    FakeSocket.latest().open();
    FakeSocket.latest().drop();
    expect(statuses.at(-1)).toEqual(["reconnecting", 1000]);
    vi.advanceTimersByTime(999);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
    FakeSocket.latest().drop(); // fails before opening
    expect(statuses.at(-1)).toEqual(["reconnecting", 2000]);
    vi.advanceTimersByTime(2000);
    FakeSocket.latest().drop();
    expect(statuses.at(-1)).toEqual(["reconnecting", 4000]);
    vi.advanceTimersByTime(4000);
    expect(onReconnected).not.toHaveBeenCalled();
    FakeSocket.latest().open();
    expect(onReconnected).toHaveBeenCalledTimes(1);
    // A successful connection resets the backoff.
    FakeSocket.latest().drop();
    expect(statuses.at(-1)).toEqual(["reconnecting", 1000]);
  });

  it("reports handshake failures so the session can be checked", () => {
    const onConnectFailed = vi.fn();
    start({ onConnectFailed });
    FakeSocket.latest().drop();
    expect(onConnectFailed).toHaveBeenCalledWith(0);
  });

  it("pings periodically while open", () => {
    start();
    const socket = FakeSocket.latest();
    socket.open();
    vi.advanceTimersByTime(3000);
    expect(socket.frames()).toEqual([{ action: "ping" }, { action: "ping" }, { action: "ping" }]);
  });

  it("hands parsed frames over and ignores garbage", () => {
    const { frames } = start();
    const socket = FakeSocket.latest();
    socket.open();
    socket.push({ type: "pong" });
    socket.onmessage?.({ data: "not json" } as MessageEvent);
    expect(frames).toEqual([{ type: "pong" }]);
  });

  it("queues chat frames sent while disconnected and sends them on open", () => {
    const { socket } = start();
    expect(socket.send({ action: "chat.send", text: "hi" })).toBe(false);
    expect(socket.send({ action: "chat.typing", typing: true })).toBe(false);
    FakeSocket.latest().open();
    expect(FakeSocket.latest().frames()).toEqual([{ action: "chat.send", text: "hi" }]);
  });

  it("stops for good: no reconnect after stop()", () => {
    const { socket, statuses } = start();
    FakeSocket.latest().open();
    socket.stop();
    expect(FakeSocket.latest().closed).toBe(true);
    vi.advanceTimersByTime(60000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(statuses.at(-1)).toEqual(["closed", null]);
  });
});
