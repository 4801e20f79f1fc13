export const EXCHANGES = ["binance", "bybit", "okx", "bitget"] as const;
export type ExchangeName = (typeof EXCHANGES)[number];
export const MARKET_TYPES = ["spot", "linear"] as const;
export type MarketType = (typeof MARKET_TYPES)[number];
export const DIRECTIONS = ["auto", "leg1_buy_leg2_sell", "leg1_sell_leg2_buy"] as const;
export type Direction = (typeof DIRECTIONS)[number];

export interface Leg {
  exchange: string;
  symbol: string;
  type: string;
}

export interface Pair {
  id: string;
  leg1: Leg;
  leg2: Leg;
  threshold: number;
  qty: number;
  totalAmount: number;
  direction: Direction | string;
  enabled: boolean;
  autoExecute?: boolean;
}

export type PairInput = Omit<Pair, "id">;

export interface ExecutionLeg {
  exchange: string;
  orderId?: string | null;
  success: boolean;
  price?: number | string | null;
  qty?: number | string | null;
  code?: string;
  message?: string;
}

export interface Execution {
  executionId?: string | number;
  id?: string | number;
  pairId: string;
  leg1: ExecutionLeg;
  leg2: ExecutionLeg;
  spread?: number | null;
  spreadPercent?: number | null;
  pnl?: number | null;
  ts: number;
  paper?: boolean;
  /** e.g. filled, partial, hedged, rejected, failed (the engine's execution state). */
  state?: string;
  trigger?: string;
  fees?: number | null;
  error?: { code: string; message: string } | null;
}

/** Top of book as the backend sent it: prices stay strings (no float formatting). */
export interface Quote {
  bid: string;
  ask: string;
  ts: number;
  venue?: string;
}

export interface SpreadPoint {
  time: number;
  value: number;
}

export interface LivePrices {
  quotes: Record<string, Quote>;
  /** Top-of-book spread % per pair id, oldest first, capped. */
  spreadHistory: Record<string, SpreadPoint[]>;
  /** Why the initial snapshot failed, if it did; live updates still flow. */
  snapshotError?: { code: string; message: string };
}

export interface PairKeys {
  id: string;
  leg1: string;
  leg2: string;
  direction: string;
}
