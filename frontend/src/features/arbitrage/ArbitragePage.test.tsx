import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { fail, mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { ArbitragePage } from "./ArbitragePage";
import type { Pair } from "./types";

const PAIRS: Pair[] = [
  {
    id: "bybit_binance_btc",
    leg1: { exchange: "bybit", symbol: "BTCUSDT", type: "linear" },
    leg2: { exchange: "binance", symbol: "BTCUSDT", type: "spot" },
    threshold: 0.1,
    qty: 0.001,
    totalAmount: 200,
    direction: "auto",
    enabled: true,
    autoExecute: false,
  },
  {
    id: "okx_bitget_eth",
    leg1: { exchange: "okx", symbol: "ETHUSDT", type: "spot" },
    leg2: { exchange: "bitget", symbol: "ETHUSDT", type: "linear" },
    threshold: 0.2,
    qty: 0.01,
    totalAmount: 100,
    direction: "leg1_buy_leg2_sell",
    enabled: false,
  },
];

function book(exchange: string, symbol: string, bid: string, ask: string) {
  return { exchange, symbol, bids: [[bid, "0.5"]], asks: [[ask, "0.3"]], ts: 1726032000123 };
}

function connectSocket(store: ReturnType<typeof renderWithProviders>["store"]): FakeWebSocket {
  act(() => store.ws.connect());
  const ws = FakeWebSocket.last;
  act(() => ws.serverOpen());
  return ws;
}

describe("ArbitragePage", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("renders a row per pair and streams price_update into the bid/ask cells", async () => {
    mockFetch({
      "GET /api/monitoring/pairs": ok(PAIRS),
      "POST /api/prices/batch": ok([
        book("bybit", "BTCUSDT", "68000.1", "68000.2"),
        book("binance", "BTCUSDT", "68000.0", "68000.30"),
      ]),
    });
    const { store } = renderWithProviders(<ArbitragePage />);
    const ws = connectSocket(store);

    expect(await screen.findByTestId("pair-row-bybit_binance_btc")).toBeInTheDocument();
    expect(screen.getByTestId("pair-row-okx_bitget_eth")).toBeInTheDocument();
    // Snapshot prices are shown exactly as the backend sent them (strings, trailing zero kept).
    expect(await screen.findByTestId("pair-bybit_binance_btc-leg1-bid")).toHaveTextContent("68000.1");
    expect(screen.getByTestId("pair-bybit_binance_btc-leg2-ask")).toHaveTextContent("68000.30");

    // The page subscribed to every leg's symbol.
    await waitFor(() => {
      const symbols = ws.sentMessages().flatMap((m) => (m.action === "subscribe" ? ((m.symbols as string[]) ?? []) : []));
      expect(symbols).toEqual(expect.arrayContaining(["bybit:linear:BTCUSDT", "binance:spot:BTCUSDT", "okx:spot:ETHUSDT"]));
    });

    act(() =>
      ws.serverSend({
        event: "price_update",
        data: { exchange: "binance", symbol: "BTCUSDT", type: "spot", bid: "68150.50", ask: "68150.60", ts: 1726032001000, venue: "emulator" },
      }),
    );
    await waitFor(() => expect(screen.getByTestId("pair-bybit_binance_btc-leg2-bid")).toHaveTextContent("68150.50"));
    expect(screen.getByTestId("pair-bybit_binance_btc-leg2-ask")).toHaveTextContent("68150.60");
    // Leg 1 is untouched, and a spread is now computed: sell binance bid 68150.50 vs buy bybit ask 68000.2.
    expect(screen.getByTestId("pair-bybit_binance_btc-leg1-bid")).toHaveTextContent("68000.1");
    expect(screen.getByTestId("pair-bybit_binance_btc-spread")).toHaveTextContent("0.2210 %");

    // An update for a symbol nobody watches changes nothing.
    act(() =>
      ws.serverSend({ event: "price_update", data: { exchange: "binance", symbol: "SOLUSDT", type: "spot", bid: "1", ask: "2", ts: 1 } }),
    );
    expect(screen.getByTestId("pair-bybit_binance_btc-leg2-bid")).toHaveTextContent("68150.50");
  });

  it("keeps working when the price snapshot endpoint fails, and fills in from the stream", async () => {
    mockFetch({
      "GET /api/monitoring/pairs": ok([PAIRS[0]]),
      "POST /api/prices/batch": fail(503, "EXCHANGE_UNAVAILABLE", "bybit cannot be reached"),
    });
    const { store } = renderWithProviders(<ArbitragePage />);
    const ws = connectSocket(store);
    expect(await screen.findByTestId("prices-snapshot-error")).toHaveTextContent("EXCHANGE_UNAVAILABLE");
    expect(screen.getByTestId("pair-bybit_binance_btc-leg1-empty")).toBeInTheDocument();
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && m.symbols)).toBe(true));
    act(() =>
      ws.serverSend({ event: "price_update", data: { exchange: "bybit", symbol: "BTCUSDT", type: "linear", bid: "1.5", ask: "1.6", ts: 5 } }),
    );
    expect(await screen.findByTestId("pair-bybit_binance_btc-leg1-bid")).toHaveTextContent("1.5");
  });

  it("says 'not available yet' when the backend lacks the pairs endpoint", async () => {
    mockFetch({});
    renderWithProviders(<ArbitragePage />);
    expect(await screen.findByTestId("pairs-error")).toHaveTextContent("Pairs is not available yet");
  });

  it("shows VALIDATION_ERROR field errors on the pair form inputs", async () => {
    const { calls } = mockFetch({
      "GET /api/monitoring/pairs": ok([]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/monitoring/pairs": fail(400, "VALIDATION_ERROR", "leg1.symbol: Unknown symbol; threshold: Must be positive.", {
        leg1: { symbol: ["Unknown symbol XYZUSDT on bybit linear."] },
        threshold: ["Ensure this value is greater than 0."],
      }),
    });
    renderWithProviders(<ArbitragePage />);
    fireEvent.click(await screen.findByTestId("pair-new"));
    const drawer = await screen.findByTestId("pair-drawer");
    fireEvent.change(within(drawer).getByTestId("pair-leg1-symbol"), { target: { value: "xyzusdt" } });
    fireEvent.click(screen.getByTestId("pair-save"));

    expect(await screen.findByText("Unknown symbol XYZUSDT on bybit linear.")).toBeInTheDocument();
    expect(screen.getByText("Ensure this value is greater than 0.")).toBeInTheDocument();
    expect(screen.getByTestId("pair-form-error")).toHaveTextContent("VALIDATION_ERROR");
    const post = calls.find((c) => c.method === "POST" && c.url === "/api/monitoring/pairs");
    expect(post?.body).toMatchObject({ leg1: { exchange: "bybit", type: "linear", symbol: "XYZUSDT" }, threshold: 0.1, direction: "auto" });
    expect(post?.headers["X-CSRFToken"]).toBeTruthy();
  });

  it("previews prices in the execute modal and highlights a RISK_REJECTED answer", async () => {
    const { calls } = mockFetch({
      "GET /api/monitoring/pairs": ok([PAIRS[0]]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/prices/batch": ok([book("bybit", "BTCUSDT", "68000.1", "68000.2"), book("binance", "BTCUSDT", "68100.0", "68100.5")]),
      "POST /api/arbitrage/execute/bybit_binance_btc": fail(409, "RISK_REJECTED", "slippage above limit"),
    });
    const { store } = renderWithProviders(<ArbitragePage />);
    const ws = connectSocket(store);
    await screen.findByTestId("pair-bybit_binance_btc-leg1-bid");
    fireEvent.click(screen.getByTestId("pair-bybit_binance_btc-execute"));

    expect(await screen.findByTestId("execute-buy-price")).toHaveTextContent("68000.2");
    expect(screen.getByTestId("execute-sell-price")).toHaveTextContent("68100.0");
    fireEvent.click(screen.getByTestId("execute-confirm"));

    const error = await screen.findByTestId("execute-error");
    expect(error).toHaveTextContent("Risk warning");
    expect(error).toHaveTextContent("slippage above limit");
    expect(calls.some((c) => c.method === "POST" && c.url === "/api/arbitrage/execute/bybit_binance_btc")).toBe(true);
    // Business events reported to the backend: triggered, then the failed result.
    const events = ws.sentMessages().filter((m) => m.action === "client_event").map((m) => m.event);
    expect(events).toEqual(["connection_change", "arbitrage_triggered", "arbitrage_result"]);
  });
});
