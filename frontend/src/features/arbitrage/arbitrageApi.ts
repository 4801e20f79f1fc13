import { api } from "../../api/api";
import type { ThunkExtra } from "../../app/store";
import { symbolKey, type OpportunityEvent, type ServerMessage } from "../../services/websocket";
import { bestSpread } from "./spread";
import type { Execution, LivePrices, Pair, PairInput, PairKeys, Quote } from "./types";

export const SPREAD_HISTORY_LIMIT = 600;

export type PairRow = Pair & { lastOpportunity?: OpportunityEvent };

/** Exactly the contract's fields: the backend's strict serializer rejects anything else. */
export function pairBody(p: PairInput): PairInput {
  const leg = (l: Pair["leg1"]) => ({ exchange: l.exchange, symbol: l.symbol, type: l.type });
  return {
    leg1: leg(p.leg1),
    leg2: leg(p.leg2),
    threshold: p.threshold,
    qty: p.qty,
    totalAmount: p.totalAmount,
    direction: p.direction,
    enabled: p.enabled,
    ...(p.autoExecute === undefined ? {} : { autoExecute: p.autoExecute }),
  };
}

export function legKey(leg: Pair["leg1"]): string {
  return symbolKey(leg.exchange, leg.type, leg.symbol);
}

export function pairKeys(pairs: Pair[] | undefined): PairKeys[] {
  return (pairs ?? []).map((p) => ({ id: p.id, leg1: legKey(p.leg1), leg2: legKey(p.leg2), direction: String(p.direction) }));
}

interface Book {
  exchange: string;
  symbol: string;
  type?: string;
  bids: Array<[string, string]>;
  asks: Array<[string, string]>;
  ts: number;
  venue?: string;
}

/** A plain list, or a page of one (`{items: [...]}` / `{results: [...]}`). */
function asList<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === "object") {
    const page = data as { items?: unknown; results?: unknown };
    if (Array.isArray(page.items)) return page.items as T[];
    if (Array.isArray(page.results)) return page.results as T[];
  }
  return [];
}

/** Apply one quote and extend the spread history of every pair that uses the symbol. */
export function applyQuote(draft: LivePrices, pairs: PairKeys[], key: string, quote: Quote): void {
  draft.quotes[key] = quote;
  for (const pair of pairs) {
    if (pair.leg1 !== key && pair.leg2 !== key) continue;
    const view = bestSpread(pair.direction, draft.quotes[pair.leg1], draft.quotes[pair.leg2]);
    if (!view) continue;
    const history = (draft.spreadHistory[pair.id] ??= []);
    const time = Math.floor(quote.ts / 1000);
    const last = history[history.length - 1];
    // lightweight-charts wants strictly increasing seconds: keep the latest value per second.
    if (last && last.time >= time) last.value = view.spreadPercent;
    else history.push({ time, value: view.spreadPercent });
    if (history.length > SPREAD_HISTORY_LIMIT) history.splice(0, history.length - SPREAD_HISTORY_LIMIT);
  }
}

export const arbitrageApi = api.injectEndpoints({
  endpoints: (build) => ({
    getPairs: build.query<PairRow[], void>({
      query: () => "/monitoring/pairs",
      transformResponse: (data: unknown) => asList<Pair>(data),
      providesTags: (result) => [
        { type: "Pair" as const, id: "LIST" },
        ...(result ?? []).map((p) => ({ type: "Pair" as const, id: p.id })),
      ],
      async onCacheEntryAdded(_arg, { cacheDataLoaded, cacheEntryRemoved, updateCachedData, extra }) {
        const { ws } = extra as ThunkExtra;
        try {
          await cacheDataLoaded;
        } catch {
          return;
        }
        const release = ws.subscribe({ pairs: ["*"] });
        const stop = ws.addListener((message: ServerMessage) => {
          if (message.event !== "opportunity") return;
          const opp = message.data;
          updateCachedData((draft) => {
            const row = draft.find((p) => p.id === opp.pairId);
            if (row) row.lastOpportunity = opp;
          });
        });
        await cacheEntryRemoved;
        stop();
        release();
      },
    }),
    createPair: build.mutation<{ id: string }, PairInput>({
      query: (pair) => ({ url: "/monitoring/pairs", method: "POST", body: pairBody(pair) }),
      invalidatesTags: [{ type: "Pair", id: "LIST" }],
    }),
    updatePair: build.mutation<unknown, Pair>({
      query: (pair) => ({ url: `/monitoring/pairs/${encodeURIComponent(pair.id)}`, method: "PUT", body: pairBody(pair) }),
      // Switches flip at once; a failure rolls back and the caller shows the error.
      async onQueryStarted(pair, { dispatch, queryFulfilled }) {
        const patch = dispatch(
          arbitrageApi.util.updateQueryData("getPairs", undefined, (draft) => {
            const index = draft.findIndex((p) => p.id === pair.id);
            if (index >= 0) draft[index] = { ...draft[index], ...pair };
          }),
        );
        try {
          await queryFulfilled;
        } catch {
          patch.undo();
        }
      },
      invalidatesTags: (_r, _e, pair) => [{ type: "Pair", id: pair.id }],
    }),
    deletePair: build.mutation<unknown, string>({
      query: (id) => ({ url: `/monitoring/pairs/${encodeURIComponent(id)}`, method: "DELETE" }),
      invalidatesTags: [{ type: "Pair", id: "LIST" }],
    }),
    executePair: build.mutation<Execution, string>({
      query: (pairId) => ({ url: `/arbitrage/execute/${encodeURIComponent(pairId)}`, method: "POST", body: {} }),
      invalidatesTags: (_r, _e, pairId) => [{ type: "Execution", id: pairId }],
    }),
    getExecutions: build.query<Execution[], string | undefined>({
      query: (pair) => ({ url: "/arbitrage/executions", params: { pair, pageSize: 20 } }),
      transformResponse: (data: unknown) => asList<Execution>(data),
      providesTags: (_r, _e, pair) => [{ type: "Execution", id: pair ?? "ALL" }],
    }),
    /**
     * Live top of book for the legs of the given pairs: a batch snapshot first, then
     * `price_update` events streamed into the cache.
     */
    livePrices: build.query<LivePrices, PairKeys[]>({
      async queryFn(pairs, _api, _extra, baseQuery) {
        const keys = [...new Set(pairs.flatMap((p) => [p.leg1, p.leg2]))];
        const data: LivePrices = { quotes: {}, spreadHistory: {} };
        if (keys.length === 0) return { data };
        const items = keys.map((k) => {
          const [exchange, type, symbol] = k.split(":");
          return { exchange, type, symbol };
        });
        const result = await baseQuery({ url: "/prices/batch", method: "POST", body: { items } });
        if (result.error) {
          data.snapshotError = { code: result.error.code, message: result.error.message };
          return { data };
        }
        asList<Book & { error?: { code: string; message: string } }>(result.data).forEach((book, index) => {
          const item = items[index];
          if (book.error) {
            data.snapshotError ??= { code: book.error.code, message: `${item?.exchange} ${item?.symbol}: ${book.error.message}` };
            return;
          }
          const bid = book.bids?.[0]?.[0];
          const ask = book.asks?.[0]?.[0];
          if (!item || bid === undefined || ask === undefined) return;
          const key = symbolKey(book.exchange ?? item.exchange ?? "", book.type ?? item.type, book.symbol ?? item.symbol ?? "");
          applyQuote(data, pairs, key, { bid: String(bid), ask: String(ask), ts: book.ts, venue: book.venue });
        });
        return { data };
      },
      async onCacheEntryAdded(pairs, { cacheDataLoaded, cacheEntryRemoved, updateCachedData, extra }) {
        const { ws } = extra as ThunkExtra;
        try {
          await cacheDataLoaded;
        } catch {
          return;
        }
        const symbols = [...new Set(pairs.flatMap((p) => [p.leg1, p.leg2]))];
        const release = symbols.length ? ws.subscribe({ symbols }) : () => undefined;
        const wanted = new Set(symbols);
        const stop = ws.addListener((message) => {
          if (message.event !== "price_update") return;
          const u = message.data;
          // Without a market type, the update applies to every leg on that exchange and symbol.
          const keys = u.type
            ? [symbolKey(u.exchange, u.type, u.symbol)].filter((k) => wanted.has(k))
            : symbols.filter((k) => k.startsWith(`${u.exchange}:`) && k.endsWith(`:${u.symbol}`));
          if (keys.length === 0) return;
          updateCachedData((draft) => {
            for (const key of keys) {
              applyQuote(draft, pairs, key, { bid: String(u.bid), ask: String(u.ask), ts: u.ts, venue: u.venue });
            }
          });
        });
        await cacheEntryRemoved;
        stop();
        release();
      },
      keepUnusedDataFor: 300,
    }),
  }),
});

export const {
  useGetPairsQuery,
  useCreatePairMutation,
  useUpdatePairMutation,
  useDeletePairMutation,
  useExecutePairMutation,
  useGetExecutionsQuery,
  useLivePricesQuery,
} = arbitrageApi;
