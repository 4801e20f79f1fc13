/**
 * Read-only desk analytics for the dashboard: opportunity statistics, the performance
 * monitor and realised PnL over time (derived from the execution history).
 */
import { api } from "../../api/api";
import type { Execution } from "../arbitrage/types";

/** `GET /api/arbitrage/stats`: one row per pair (trading/stats_views.py). */
export interface OpportunityStat {
  pairId: string;
  count: number;
  open: number;
  avgNetEdgePercent: number | null;
  maxNetEdgePercent: number | null;
  totalOpenSeconds: number;
  lastDetectedTs: number | null;
}

export interface PerformanceMetric {
  label: string;
  value: number | null;
  threshold: number;
  mustBe: "below" | "above" | string;
  unit: "ms" | "ratio" | string;
  samples: number;
  minSamples: number;
  sufficient: boolean;
  breached: boolean;
  alerting: boolean;
}

/** `GET /api/monitoring/performance` (arbsite/monitor.py `report`). */
export interface PerformanceReport {
  status: "ok" | "degraded" | "no_data" | string;
  windowSeconds: number;
  metrics: Record<string, PerformanceMetric>;
  breaches: string[];
  ts: number;
}

export interface ExecutionPage {
  items: Execution[];
  total: number;
  page: number;
  pageSize: number;
  pages: number;
}

/** The largest page the backend serves; the PnL chart covers this many latest executions. */
export const PNL_PAGE_SIZE = 100;

export interface PnlPoint {
  time: number;
  value: number;
}

export interface PnlSeries {
  points: PnlPoint[];
  total: number;
  fees: number;
  count: number;
}

export interface PnlHistory {
  live: PnlSeries;
  paper: PnlSeries;
}

function emptySeries(): PnlSeries {
  return { points: [], total: 0, fees: 0, count: 0 };
}

/**
 * Cumulative realised PnL, oldest first, paper and live kept apart (paper results must never
 * read as real money). Executions without a pnl (rejected, still running) are left out.
 * Chart time is whole seconds and must strictly increase: several executions in one second
 * collapse into that second's final cumulative value.
 */
export function cumulativePnl(executions: Execution[]): PnlHistory {
  const out: PnlHistory = { live: emptySeries(), paper: emptySeries() };
  const sorted = executions
    .filter((e) => typeof e.pnl === "number" && Number.isFinite(e.pnl) && typeof e.ts === "number")
    .slice()
    .sort((a, b) => a.ts - b.ts);
  for (const e of sorted) {
    const series = e.paper ? out.paper : out.live;
    series.total += e.pnl as number;
    series.fees += typeof e.fees === "number" ? e.fees : 0;
    series.count += 1;
    const time = Math.floor(e.ts / 1000);
    const value = Number(series.total.toFixed(8));
    const last = series.points[series.points.length - 1];
    if (last && last.time === time) last.value = value;
    else series.points.push({ time, value });
  }
  return out;
}

function asPage(data: unknown): ExecutionPage {
  const raw = (data ?? {}) as Partial<ExecutionPage>;
  const items = Array.isArray(data) ? (data as Execution[]) : Array.isArray(raw.items) ? raw.items : [];
  return {
    items,
    total: typeof raw.total === "number" ? raw.total : items.length,
    page: typeof raw.page === "number" ? raw.page : 1,
    pageSize: typeof raw.pageSize === "number" ? raw.pageSize : items.length,
    pages: typeof raw.pages === "number" ? raw.pages : 1,
  };
}

export const analyticsApi = api.injectEndpoints({
  endpoints: (build) => ({
    getOpportunityStats: build.query<OpportunityStat[], string | void>({
      query: (pair) => ({ url: "/arbitrage/stats", params: { pair: pair || undefined } }),
      transformResponse: (data: unknown) => (Array.isArray(data) ? (data as OpportunityStat[]) : []),
      providesTags: ["Stats"],
    }),
    getPerformance: build.query<PerformanceReport, void>({
      query: () => "/monitoring/performance",
      providesTags: ["Performance"],
    }),
    /** The latest executions (all pairs) for the realised PnL chart. */
    getPnlExecutions: build.query<ExecutionPage, void>({
      query: () => ({ url: "/arbitrage/executions", params: { page: 1, pageSize: PNL_PAGE_SIZE } }),
      transformResponse: asPage,
      // A fill on any pair (the event feed invalidates that pair's executions) moves the line.
      providesTags: (result) => [
        { type: "Execution" as const, id: "PNL" },
        ...[...new Set((result?.items ?? []).map((e) => e.pairId))].map((id) => ({ type: "Execution" as const, id })),
      ],
    }),
  }),
});

export const { useGetOpportunityStatsQuery, useGetPerformanceQuery, useGetPnlExecutionsQuery } = analyticsApi;

/** 4321 s -> "1 h 12 m"; 42.5 -> "42.5 s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "0 s";
  if (seconds < 60) return `${Number(seconds.toFixed(1))} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} m ${Math.floor(seconds % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A monitor figure in its unit: ratios as percentages, latencies in ms. */
export function formatMetric(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (unit === "ratio") return `${(value * 100).toFixed(2)} %`;
  if (unit === "ms") return value >= 10 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`;
  return String(value);
}
