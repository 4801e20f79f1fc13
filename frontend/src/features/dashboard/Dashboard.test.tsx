import { act, screen, waitFor } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { Dashboard } from "./Dashboard";
import { exchangeHealth } from "./ExchangeHealth";

const EXCHANGES = [
  {
    name: "binance",
    connected: true,
    publicOnly: true,
    venue: "emulator",
    reachable: true,
    websocket: "live",
    lastUpdateAgeMs: 200,
    streams: [{ instrument: "binance:spot:BTCUSDT", state: "live", ageMs: 200, reconnects: 0, error: null }],
    lastError: null,
  },
  { name: "okx", connected: false, publicOnly: true, venue: "emulator", reachable: null, websocket: "idle", lastUpdateAgeMs: null, streams: [], lastError: null },
];

describe("Dashboard", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("shows exchange health with an unmissable EMULATOR label and a live event timeline", async () => {
    mockFetch({ "GET /api/exchanges": ok(EXCHANGES), "GET /api/monitoring/pairs": ok([]) });
    const { store } = renderWithProviders(<Dashboard />);
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());

    expect(await screen.findByTestId("emulator-banner")).toHaveTextContent("EMULATOR");
    expect(await screen.findByTestId("exchange-binance-health")).toHaveTextContent("healthy");
    expect(screen.getByTestId("exchange-okx-health")).toHaveTextContent("idle");
    expect(screen.getAllByTestId("venue-emulator")).toHaveLength(2);

    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));
    act(() => {
      ws.serverSend({ event: "order_filled", data: { exchange: "bybit", orderId: "A123", price: "68000.1", qty: 0.001, ts: 1726032003000 } });
      ws.serverSend({ event: "engine_alert", data: { severity: "warning", code: "RISK_REJECTED", message: "slippage above limit", pairId: "p1", ts: 1726032004000 } });
      ws.serverSend({ event: "price_update", data: { exchange: "bybit", symbol: "BTCUSDT", bid: 1, ask: 2, ts: 1 } });
    });
    expect(await screen.findByTestId("event-order_filled")).toHaveTextContent("A123: 0.001 @ 68000.1");
    expect(screen.getByTestId("event-engine_alert")).toHaveTextContent("slippage above limit (RISK_REJECTED)");
  });

  it("refetches the venue's account after a fill there, so the card never shows pre-fill balances", async () => {
    let btc = "1";
    const { calls } = mockFetch({
      "GET /api/exchanges": ok(EXCHANGES),
      "GET /api/monitoring/pairs": ok([]),
      "GET /api/account/binance": () => ok({ balances: [{ asset: "BTC", free: btc, total: btc }], positions: [], paper: true }),
    });
    const { store } = renderWithProviders(<Dashboard />);
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());
    expect(await screen.findAllByText("1", { selector: "td" })).toHaveLength(2);
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));

    btc = "1.001";
    act(() => ws.serverSend({ event: "order_filled", data: { exchange: "binance", orderId: "B1", price: "61828.58", qty: 0.001, ts: 1 } }));
    expect(await screen.findAllByText("1.001", { selector: "td" })).toHaveLength(2);
    expect(calls.filter((c) => c.url === "/api/account/binance")).toHaveLength(2);
  });

  it("grades exchange health from the status payload", () => {
    expect(exchangeHealth({ name: "x", connected: false, publicOnly: true, reachable: false }).status).toBe("error");
    expect(exchangeHealth({ name: "x", connected: true, publicOnly: true, reachable: true, websocket: "degraded" }).status).toBe("warning");
    expect(exchangeHealth({ name: "x", connected: true, publicOnly: true, reachable: true, websocket: "live", lastUpdateAgeMs: 9000 }).text).toContain("stale");
  });
});
