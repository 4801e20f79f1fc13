/**
 * Top-of-book spread for display. Prices arrive as strings and are shown as strings; only
 * the derived percentage is a number. Decisions (executable spread, fees) are the engine's.
 */
import type { Pair, Quote } from "./types";

export type Side = "leg1_buy_leg2_sell" | "leg1_sell_leg2_buy";

export interface SpreadView {
  direction: Side;
  buyLeg: "leg1" | "leg2";
  buyPrice: string;
  sellPrice: string;
  spread: number;
  spreadPercent: number;
}

function num(value: string): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : NaN;
}

/** Sell − buy over buy, for one direction; null if a price is missing or not positive. */
export function spreadFor(direction: Side, leg1: Quote | undefined, leg2: Quote | undefined): SpreadView | null {
  if (!leg1 || !leg2) return null;
  const buy = direction === "leg1_buy_leg2_sell" ? leg1.ask : leg2.ask;
  const sell = direction === "leg1_buy_leg2_sell" ? leg2.bid : leg1.bid;
  const b = num(buy);
  const s = num(sell);
  if (!(b > 0) || !(s > 0)) return null;
  const spread = s - b;
  return {
    direction,
    buyLeg: direction === "leg1_buy_leg2_sell" ? "leg1" : "leg2",
    buyPrice: buy,
    sellPrice: sell,
    spread,
    spreadPercent: (spread / b) * 100,
  };
}

/** For `auto`, whichever direction is better; otherwise the configured one. */
export function bestSpread(direction: Pair["direction"], leg1?: Quote, leg2?: Quote): SpreadView | null {
  if (direction === "leg1_buy_leg2_sell" || direction === "leg1_sell_leg2_buy") {
    return spreadFor(direction, leg1, leg2);
  }
  const a = spreadFor("leg1_buy_leg2_sell", leg1, leg2);
  const b = spreadFor("leg1_sell_leg2_buy", leg1, leg2);
  if (!a) return b;
  if (!b) return a;
  return a.spreadPercent >= b.spreadPercent ? a : b;
}

export function formatPercent(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${value >= 0 ? "" : "−"}${Math.abs(value).toFixed(digits)} %`;
}
