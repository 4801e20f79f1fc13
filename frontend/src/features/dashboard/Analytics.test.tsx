import { act, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { fail, mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import type { Execution } from "../arbitrage/types";
import { cumulativePnl, formatDuration, formatMetric } from "./analyticsApi";
import { EventTimeline } from "./EventTimeline";
import { OpportunityStats } from "./OpportunityStats";
import { PerformanceCard } from "./PerformanceCard";
import { PnlCard } from "./PnlCard";

function execution(id: number, ts: number, pnl: number | null, paper: boolean, fees = 0.1): Execution {
  const leg = { exchange: "binance", success: true };
  return { executionId: id, pairId: "p1", leg1: leg, leg2: leg, ts, pnl, fees, paper, state: pnl === null ? "rejected" : "completed" };
}

describe("cumulativePnl", () => {
  it("accumulates oldest first, keeps paper apart, skips executions without a pnl, one point per second", () => {
    const h = cumulativePnl([
      execution(4, 1_700_000_003_500, 2, false),
      execution(3, 1_700_000_003_100, -0.5, false),
      execution(2, 1_700_000_002_000, null, false),
      execution(1, 1_700_000_001_000, 1.25, true),
      execution(5, 1_700_000_009_000, 0.75, true),
    ]);
    expect(h.live.points).toEqual([{ time: 1_700_000_003, value: 1.5 }]);
    expect(h.live).toMatchObject({ total: 1.5, count: 2 });
    expect(h.live.fees).toBeCloseTo(0.2);
    expect(h.paper.points).toEqual([
      { time: 1_700_000_001, value: 1.25 },
      { time: 1_700_000_009, value: 2 },
    ]);
  });

  it("formats durations and monitor figures in their units", () => {
    expect(formatDuration(42.46)).toBe("42.5 s");
    expect(formatDuration(4321)).toBe("1 h 12 m");
    expect(formatMetric(0.0123, "ratio")).toBe("1.23 %");
    expect(formatMetric(187.4, "ms")).toBe("187 ms");
    expect(formatMetric(null, "ms")).toBe("—");
  });
});

describe("Dashboard analytics cards (mock fetch)", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("refetches realised PnL when a fill arrives for a pair it has not listed yet", async () => {
    let items: Execution[] = [];
    const { calls } = mockFetch({
      "GET /api/arbitrage/executions": () => ok({ items, page: 1, pageSize: 100, total: items.length, pages: 1 }),
    });
    const { store } = renderWithProviders(
      <>
        <PnlCard />
        <EventTimeline />
      </>,
    );
    act(() => store.ws.connect());
    const ws = FakeWebSocket.last;
    act(() => ws.serverOpen());
    expect(await screen.findByTestId("pnl-paper")).toHaveTextContent("0 execution(s)");
    await waitFor(() => expect(ws.sentMessages().some((m) => m.action === "subscribe" && Array.isArray(m.plans))).toBe(true));

    items = [execution(1, 1_700_000_001_000, 0.42, true)];
    act(() => ws.serverSend({ event: "order_filled", data: { exchange: "binance", orderId: "B1", pairId: "p9", price: "1", qty: 0.001, ts: 1 } }));
    await waitFor(() => expect(screen.getByTestId("pnl-paper")).toHaveTextContent("1 execution(s)"));
    expect(calls.filter((c) => c.url.startsWith("/api/arbitrage/executions"))).toHaveLength(2);
  });

  it("shows realised PnL totals with paper labelled and says when only the latest page is covered", async () => {
    const { calls } = mockFetch({
      "GET /api/arbitrage/executions": ok({
        items: [execution(2, 1_700_000_002_000, 3.18, true), execution(1, 1_700_000_001_000, -1, false)],
        page: 1,
        pageSize: 100,
        total: 250,
        pages: 3,
      }),
    });
    renderWithProviders(<PnlCard />);
    const paper = await screen.findByTestId("pnl-paper");
    expect(paper).toHaveTextContent("PAPER");
    expect(paper).toHaveTextContent("3.1800");
    expect(screen.getByTestId("pnl-live")).toHaveTextContent("-1.0000");
    expect(screen.getByTestId("pnl-live")).toHaveTextContent("LIVE");
    expect(screen.getByTestId("pnl-coverage")).toHaveTextContent("latest 2 of 250 executions");
    expect(calls[0]?.url).toBe("/api/arbitrage/executions?page=1&pageSize=100");
  });

  it("reports an execution-history error envelope instead of a zero PnL", async () => {
    mockFetch({ "GET /api/arbitrage/executions": fail(500, "INTERNAL_ERROR", "boom") });
    renderWithProviders(<PnlCard />);
    expect(await screen.findByTestId("pnl-error")).toHaveTextContent("Execution history: Internal server error");
    expect(screen.getByTestId("pnl-error")).toHaveTextContent("boom");
    expect(screen.queryByTestId("pnl-live")).toBeNull();
  });

  it("lists opportunity statistics per pair", async () => {
    mockFetch({
      "GET /api/arbitrage/stats": ok([
        { pairId: "BTC_bybit_binance", count: 12, open: 1, avgNetEdgePercent: 0.0312, maxNetEdgePercent: 0.1, totalOpenSeconds: 95, lastDetectedTs: 1_700_000_000_000 },
      ]),
    });
    renderWithProviders(<OpportunityStats />);
    const row = await screen.findByTestId("opportunity-stats-BTC_bybit_binance");
    const cells = within(row).getAllByRole("cell").map((c) => c.textContent);
    expect(cells.slice(0, 6)).toEqual(["BTC_bybit_binance", "12", "1", "0.0312 %", "0.1000 %", "1 m 35 s"]);
  });

  it("shows a stats error envelope", async () => {
    mockFetch({ "GET /api/arbitrage/stats": fail(400, "VALIDATION_ERROR", "pair: unknown") });
    renderWithProviders(<OpportunityStats />);
    expect(await screen.findByTestId("opportunity-stats-error")).toHaveTextContent("Opportunity statistics: Some fields are invalid");
    expect(screen.getByTestId("opportunity-stats-error")).toHaveTextContent("pair: unknown");
  });

  it("shows the performance monitor's status and each breached figure", async () => {
    mockFetch({
      "GET /api/monitoring/performance": ok({
        status: "degraded",
        windowSeconds: 300,
        breaches: ["api_latency_p95_ms"],
        ts: 1,
        metrics: {
          api_latency_p95_ms: { label: "API latency P95", value: 412, threshold: 200, mustBe: "below", unit: "ms", samples: 80, minSamples: 20, sufficient: true, breached: true, alerting: true },
          execution_success_rate: { label: "Execution success rate", value: null, threshold: 0.99, mustBe: "above", unit: "ratio", samples: 0, minSamples: 5, sufficient: false, breached: false, alerting: false },
        },
      }),
    });
    renderWithProviders(<PerformanceCard />);
    expect(await screen.findByTestId("performance-status")).toHaveTextContent("degraded");
    const latency = screen.getByTestId("perf-api_latency_p95_ms");
    expect(latency).toHaveAttribute("data-breached", "true");
    expect(latency).toHaveTextContent("412 ms (< 200 ms) breached · alert");
    expect(screen.getByTestId("perf-execution_success_rate")).toHaveTextContent("— (> 99.00 %)");
  });

  it("shows the monitor's 503 envelope when Redis is down", async () => {
    mockFetch({ "GET /api/monitoring/performance": fail(503, "INTERNAL_ERROR", "Metrics are unavailable: Redis cannot be reached.") });
    renderWithProviders(<PerformanceCard />);
    expect(await screen.findByTestId("performance-error")).toHaveTextContent("Performance monitor: Internal server error");
    expect(screen.getByTestId("performance-error")).toHaveTextContent("Redis cannot be reached");
    expect(screen.queryByTestId("performance-status")).toBeNull();
  });
});
