import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { fail, mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { legFill, sliceErrors, type TwapSlice, type TwapSliceOrder } from "./twapApi";
import { TwapPage } from "./TwapPage";

const PLAN = {
  planId: "twap_001",
  name: "BTC_TWAP",
  totalQty: 0.003,
  sliceQty: 0.001,
  intervalMs: 30000,
  legs: [
    { exchange: "bybit", symbol: "BTCUSDT", side: "buy", type: "market", marketType: "linear" },
    { exchange: "binance", symbol: "BTCUSDT", side: "sell", type: "market", marketType: "spot" },
  ],
  state: "running",
  progress: { executed: 0.001, remaining: 0.002, slicesDone: 1, slicesTotal: 3 },
  lastExecutionTs: 1726032005000,
};

function order(leg: number, filledQty: number, avgPrice: number | null, extra: Partial<TwapSliceOrder> = {}): TwapSliceOrder {
  return {
    leg,
    clientOrderId: `c${leg}`,
    orderId: null,
    exchange: leg === 1 ? "bybit" : "binance",
    symbol: "BTCUSDT",
    side: leg === 1 ? "buy" : "sell",
    type: "market",
    qty: 0.001,
    status: filledQty > 0 ? "filled" : "failed",
    filledQty,
    avgPrice,
    fee: 0,
    paper: true,
    error: null,
    ...extra,
  };
}

function slice(index: number, state: string, orders: TwapSliceOrder[], extra: Partial<TwapSlice> = {}): TwapSlice {
  return { index, qty: 0.001, catchUp: false, state, dueTs: 1726032000000 + index * 30000, finishedTs: null, attempts: 1, deferrals: 0, note: null, orders, ...extra };
}

describe("TWAP per-slice history", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("folds a leg's orders into filled qty and a fill-weighted average price", () => {
    const s = slice(1, "done", [order(1, 0.0004, 100), order(1, 0.0006, 110), order(2, 0.001, 105)]);
    expect(legFill(s, 1)).toMatchObject({ filledQty: 0.001, orders: 2, paper: true, status: "filled" });
    expect(legFill(s, 1).avgPrice).toBeCloseTo(106);
    expect(legFill(s, 3)).toMatchObject({ filledQty: 0, avgPrice: null, status: null, orders: 0 });
    const failed = slice(2, "done", [order(2, 0, null, { error: { code: "UPSTREAM_ERROR", message: "rejected" } })], { note: "spread guard: waited 2s" });
    expect(sliceErrors(failed)).toEqual(["leg 2: rejected (UPSTREAM_ERROR)", "spread guard: waited 2s"]);
  });

  it("expands a plan into its slices and refetches them when twap_progress reports a finished slice", async () => {
    let slices: TwapSlice[] = [
      slice(1, "done", [order(1, 0.001, 68000.5), order(2, 0.001, 67990.1)], { finishedTs: 1726032031000 }),
      slice(2, "running", []),
      slice(3, "pending", []),
    ];
    const { calls } = mockFetch({
      "GET /api/twap/plans": ok([PLAN]),
      "GET /api/twap/plans/twap_001": () => ok({ ...PLAN, slices }),
    });
    const { store } = renderWithProviders(<TwapPage />);
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());

    const toggle = await screen.findByTestId("twap-twap_001-slices-toggle");
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    expect(calls.some((c) => c.url === "/api/twap/plans/twap_001")).toBe(false);
    fireEvent.click(toggle);
    expect(toggle).toHaveAttribute("aria-expanded", "true");

    const panel = await screen.findByTestId("twap-twap_001-slices");
    expect(await within(panel).findByTestId("slice-1-leg1")).toHaveTextContent("0.001 @ 68000.5");
    expect(within(panel).getByTestId("slice-1-leg2")).toHaveTextContent("paper");
    expect(within(panel).getByTestId("slice-2-state")).toHaveTextContent("running");
    expect(within(panel).getByTestId("slice-row-3")).toBeInTheDocument();
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));

    slices = [
      slices[0]!,
      slice(2, "done", [order(1, 0.001, 68010), order(2, 0, null, { error: { code: "INSUFFICIENT_FUNDS", message: "not enough BTC" } })], { finishedTs: 1726032061000 }),
      slices[2]!,
    ];
    act(() =>
      ws.serverSend({
        event: "twap_progress",
        data: { planId: "twap_001", executed: 0.002, remaining: 0.001, slicesDone: 2, slicesTotal: 3, state: "running", ts: 1726032061000 },
      }),
    );
    expect(await screen.findByTestId("slice-2-error")).toHaveTextContent("leg 2: not enough BTC (INSUFFICIENT_FUNDS)");
    expect(screen.getByTestId("slice-2-state")).toHaveTextContent("done");
    // The plan list itself is not refetched for a slice completion (the event carries its progress).
    expect(calls.filter((c) => c.url === "/api/twap/plans")).toHaveLength(1);

    fireEvent.click(toggle);
    await waitFor(() => expect(screen.queryByTestId("twap-twap_001-slices")).not.toBeVisible());
  });

  it("shows a plan-detail error envelope inside the expanded row", async () => {
    mockFetch({
      "GET /api/twap/plans": ok([PLAN]),
      "GET /api/twap/plans/twap_001": fail(404, "NOT_FOUND", "TWAP plan twap_001 not found."),
    });
    renderWithProviders(<TwapPage />);
    fireEvent.click(await screen.findByTestId("twap-twap_001-slices-toggle"));
    expect(await screen.findByTestId("twap-twap_001-slices-error")).toHaveTextContent("twap_001 not found");
  });
});
