import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { TwapPage } from "./TwapPage";

const PLAN = {
  planId: "twap_001",
  name: "BTC_TWAP",
  totalQty: 0.01,
  sliceQty: 0.001,
  intervalMs: 30000,
  legs: [
    { exchange: "bybit", symbol: "BTCUSDT", side: "buy", type: "market" },
    { exchange: "binance", symbol: "BTCUSDT", side: "sell", type: "market" },
  ],
  state: "running",
  progress: { executed: 0.002, remaining: 0.008, slicesDone: 2, slicesTotal: 10 },
  lastExecutionTs: 1726032005000,
};

describe("TwapPage", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("lists plans and moves progress and state on twap_progress", async () => {
    // The server's view follows the events (a state change refetches the list).
    let current: Record<string, unknown> = PLAN;
    mockFetch({ "GET /api/twap/plans": () => ok([current]) });
    const { store } = renderWithProviders(<TwapPage />);
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());

    const row = await screen.findByTestId("twap-row-twap_001");
    expect(within(row).getByTestId("twap-twap_001-state")).toHaveTextContent("running");
    expect(within(row).getByTestId("twap-twap_001-progress")).toHaveTextContent("slices 2/10");
    expect(within(row).getByTestId("twap-twap_001-pause")).toBeEnabled();
    expect(within(row).getByTestId("twap-twap_001-resume")).toBeDisabled();
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));

    current = { ...PLAN, state: "paused", progress: { executed: 0.005, remaining: 0.005, slicesDone: 5, slicesTotal: 10 } };
    act(() =>
      ws.serverSend({
        event: "twap_progress",
        data: { planId: "twap_001", executed: 0.005, remaining: 0.005, slicesDone: 5, slicesTotal: 10, state: "paused", ts: 1726032100000 },
      }),
    );
    await waitFor(() => expect(screen.getByTestId("twap-twap_001-state")).toHaveTextContent("paused"));
    expect(screen.getByTestId("twap-twap_001-progress")).toHaveTextContent("slices 5/10");
    expect(screen.getByTestId("twap-twap_001-progress")).toHaveTextContent("50%");
    expect(screen.getByTestId("twap-twap_001-resume")).toBeEnabled();
  });

  it("shows why the engine paused a plan, fetched when twap_progress reports the new state", async () => {
    let plan: Record<string, unknown> = PLAN;
    const { calls } = mockFetch({ "GET /api/twap/plans": () => ok([plan]) });
    const { store } = renderWithProviders(<TwapPage />);
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());
    expect(await screen.findByTestId("twap-twap_001-state")).toHaveTextContent("running");
    expect(screen.queryByTestId("twap-twap_001-reason")).toBeNull();
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));

    const reason = "slice 3 refused 5 times: no live order book for bybit:spot:BTCUSDT";
    plan = { ...PLAN, state: "paused", stateReason: reason };
    act(() =>
      ws.serverSend({
        event: "twap_progress",
        data: { planId: "twap_001", executed: 0.002, remaining: 0.008, slicesDone: 2, slicesTotal: 10, state: "paused", ts: 1726032100000 },
      }),
    );
    expect(await screen.findByTestId("twap-twap_001-reason")).toHaveTextContent(reason);
    expect(calls.filter((c) => c.url === "/api/twap/plans")).toHaveLength(2);
  });

  it("sends control actions to the plan's control endpoint", async () => {
    const { calls } = mockFetch({
      "GET /api/twap/plans": ok([PLAN]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/twap/twap_001/control": { status: 200, body: { success: true } },
    });
    renderWithProviders(<TwapPage />);
    fireEvent.click(await screen.findByTestId("twap-twap_001-pause"));
    await waitFor(() =>
      expect(calls.find((c) => c.url === "/api/twap/twap_001/control")?.body).toEqual({ action: "pause" }),
    );
  });

  it("creates a plan with each leg's market type (Bybit linear against Binance spot by default)", async () => {
    const { calls } = mockFetch({
      "GET /api/twap/plans": ok([]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/twap/plans": { status: 201, body: { success: true, data: { planId: "twap_002" } } },
    });
    renderWithProviders(<TwapPage />);
    fireEvent.change(await screen.findByTestId("twap-name"), { target: { value: "BTC_TWAP" } });
    fireEvent.click(screen.getByTestId("twap-create"));
    await waitFor(() => expect(calls.find((c) => c.url === "/api/twap/plans" && c.method === "POST")).toBeTruthy());
    const body = calls.find((c) => c.url === "/api/twap/plans" && c.method === "POST")?.body as { legs: unknown[]; intervalMs: number };
    expect(body.intervalMs).toBe(30000);
    expect(body.legs).toEqual([
      { exchange: "bybit", marketType: "linear", symbol: "BTCUSDT", side: "buy", type: "market" },
      { exchange: "binance", marketType: "spot", symbol: "BTCUSDT", side: "sell", type: "market" },
    ]);
  });

  it("says plans are not available yet when the backend lacks TWAP", async () => {
    mockFetch({});
    renderWithProviders(<TwapPage />);
    expect(await screen.findByTestId("twap-error")).toHaveTextContent("TWAP plans is not available yet");
  });
});
