import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket } from "../test/FakeWebSocket";
import { makeTestStore } from "../test/renderWithProviders";
import { WsClient, type ConnectionState, type SocketFactory } from "./websocket";

function makeClient(states: ConnectionState[] = []) {
  return new WsClient({
    url: "ws://test/ws",
    WebSocketImpl: FakeWebSocket as unknown as SocketFactory,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    pingIntervalMs: 0,
    random: () => 0,
    onStateChange: (s) => states.push(s),
  });
}

describe("WsClient", () => {
  beforeEach(() => {
    FakeWebSocket.reset();
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("subscribes once the socket opens and reference-counts topics", () => {
    const client = makeClient();
    const releaseA = client.subscribe({ symbols: ["binance:spot:BTCUSDT"] });
    client.connect();
    const ws = FakeWebSocket.last;
    ws.serverOpen();
    expect(ws.sentMessages()[0]).toEqual({ action: "subscribe", symbols: ["binance:spot:BTCUSDT"] });

    const releaseB = client.subscribe({ symbols: ["binance:spot:BTCUSDT", "bybit:linear:BTCUSDT"] });
    expect(ws.sentMessages().at(-1)).toEqual({ action: "subscribe", symbols: ["bybit:linear:BTCUSDT"] });

    releaseA();
    expect(ws.sentMessages().filter((m) => m.action === "unsubscribe")).toHaveLength(0);
    releaseB();
    expect(ws.sentMessages().at(-1)).toEqual({
      action: "unsubscribe",
      symbols: ["binance:spot:BTCUSDT", "bybit:linear:BTCUSDT"],
    });
  });

  it("reconnects with backoff and resubscribes everything", () => {
    const states: ConnectionState[] = [];
    const client = makeClient(states);
    client.subscribe({ symbols: ["binance:spot:BTCUSDT"], pairs: ["*"] });
    client.subscribe({ plans: ["*"] });
    client.connect();
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.instances).toHaveLength(1);

    FakeWebSocket.last.serverClose(1006);
    expect(client.state).toBe("reconnecting");
    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);

    // The second attempt fails too: the delay doubles.
    FakeWebSocket.last.serverClose(1006);
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(3);

    const third = FakeWebSocket.last;
    third.serverOpen();
    expect(client.state).toBe("open");
    const [subscribe, hello] = third.sentMessages();
    expect(subscribe).toEqual({ action: "subscribe", symbols: ["binance:spot:BTCUSDT"], pairs: ["*"], plans: ["*"] });
    expect(hello).toMatchObject({ action: "client_event", event: "connection_change", data: { state: "connected", reconnect: true } });
    expect(states).toEqual(["connecting", "open", "reconnecting", "open"]);
  });

  it("stops on 4401 (not logged in) instead of retrying", () => {
    const client = makeClient();
    client.connect();
    FakeWebSocket.last.serverClose(4401);
    expect(client.state).toBe("unauthorized");
    vi.advanceTimersByTime(10_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it("does not reconnect after an explicit disconnect", () => {
    const client = makeClient();
    client.connect();
    FakeWebSocket.last.serverOpen();
    client.disconnect();
    vi.advanceTimersByTime(10_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(client.state).toBe("closed");
  });

  it("queues business events while offline and only sends the three allowed kinds", () => {
    const client = makeClient();
    client.sendClientEvent("arbitrage_triggered", { pairId: "p1" });
    client.connect();
    const ws = FakeWebSocket.last;
    ws.serverOpen();
    const events = ws.sentMessages().filter((m) => m.action === "client_event").map((m) => m.event);
    expect(events).toEqual(["connection_change", "arbitrage_triggered"]);
  });

  it("delivers parsed server events to listeners and ignores garbage", () => {
    const client = makeClient();
    const seen: string[] = [];
    client.addListener((m) => seen.push(m.event));
    client.connect();
    const ws = FakeWebSocket.last;
    ws.serverOpen();
    ws.onmessage?.({ data: "not json" } as MessageEvent);
    ws.serverSend({ event: "pong", data: {} });
    expect(seen).toEqual(["pong"]);
  });

  it("mirrors the connection state into the store", () => {
    const store = makeTestStore();
    expect(store.getState().connection.state).toBe("idle");
    store.ws.connect();
    FakeWebSocket.last.serverOpen();
    expect(store.getState().connection.state).toBe("open");
    FakeWebSocket.last.serverClose(1006);
    expect(store.getState().connection).toMatchObject({ state: "reconnecting", attempt: 1 });
    vi.advanceTimersByTime(20);
    FakeWebSocket.last.serverOpen();
    expect(store.getState().connection.state).toBe("open");
    store.ws.disconnect();
  });
});
