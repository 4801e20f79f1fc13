import { api } from "../../api/api";
import type { ThunkExtra } from "../../app/store";
import type {
  EngineAlertEvent,
  OpportunityEvent,
  OrderFailedEvent,
  OrderFilledEvent,
  OrderSubmittedEvent,
  TwapProgressEvent,
} from "../../services/websocket";

export interface ExchangeStream {
  instrument: string;
  state: "connecting" | "live" | "stale" | "reconnecting" | "error" | string;
  ageMs?: number | null;
  reconnects?: number;
  error?: { code: string; message: string } | null;
}

export interface ExchangeStatus {
  name: string;
  connected: boolean;
  publicOnly: boolean;
  venue?: "live" | "emulator" | string;
  /** null: nothing has been asked of this exchange yet. */
  reachable?: boolean | null;
  /** `idle` (nothing watched), `live`, `degraded` (some live) or `down`. */
  websocket?: "idle" | "live" | "degraded" | "down" | string | boolean;
  lastUpdateAgeMs?: number | null;
  streams?: ExchangeStream[];
  lastError?: { code: string; message: string; ts?: number } | null;
}

export interface AccountBalance {
  asset: string;
  free: number | string;
  used?: number | string;
  total?: number | string;
}

export interface Account {
  balances: AccountBalance[];
  positions: Array<Record<string, unknown>>;
  paper?: boolean;
  publicOnly?: boolean;
}

export type FeedEvent =
  | { id: number; event: "order_submitted"; data: OrderSubmittedEvent }
  | { id: number; event: "order_filled"; data: OrderFilledEvent }
  | { id: number; event: "order_failed"; data: OrderFailedEvent }
  | { id: number; event: "twap_progress"; data: TwapProgressEvent }
  | { id: number; event: "engine_alert"; data: EngineAlertEvent }
  | { id: number; event: "opportunity"; data: OpportunityEvent };

export interface EventFeed {
  events: FeedEvent[];
  opportunities: number;
}

export const FEED_LIMIT = 200;
const FEED_EVENTS = new Set(["order_submitted", "order_filled", "order_failed", "twap_progress", "engine_alert"]);
let feedSeq = 0;

export const dashboardApi = api.injectEndpoints({
  endpoints: (build) => ({
    getExchanges: build.query<ExchangeStatus[], void>({
      query: () => "/exchanges",
      transformResponse: (data: unknown) => (Array.isArray(data) ? (data as ExchangeStatus[]) : []),
      providesTags: ["Exchange"],
    }),
    getAccount: build.query<Account, string>({
      query: (exchange) => `/account/${encodeURIComponent(exchange)}`,
      providesTags: (_r, _e, exchange) => [{ type: "Account", id: exchange }],
    }),
    /** Business events from the websocket, newest first; no REST behind it. */
    eventFeed: build.query<EventFeed, void>({
      queryFn: () => ({ data: { events: [], opportunities: 0 } }),
      keepUnusedDataFor: 3600,
      async onCacheEntryAdded(_arg, { cacheDataLoaded, cacheEntryRemoved, updateCachedData, extra, dispatch }) {
        const { ws } = extra as ThunkExtra;
        try {
          await cacheDataLoaded;
        } catch {
          return;
        }
        const release = ws.subscribe({ pairs: ["*"], plans: ["*"] });
        let lastPlanState: Record<string, string> = {};
        const stop = ws.addListener((message) => {
          if (message.event === "opportunity") {
            updateCachedData((draft) => {
              draft.opportunities += 1;
            });
            return;
          }
          if (!FEED_EVENTS.has(message.event)) return;
          // Auto-executions happen server-side: refresh that pair's execution history.
          const pairId = (message.data as { pairId?: string }).pairId;
          if (pairId && (message.event === "order_filled" || message.event === "order_failed")) {
            // "PNL": the realised PnL chart, which may not list this pair yet.
            dispatch(api.util.invalidateTags([{ type: "Execution", id: pairId }, { type: "Execution", id: "PNL" }]));
          }
          // A fill moves that venue's (paper or live) balances: never show the pre-fill account.
          if (message.event === "order_filled") {
            dispatch(api.util.invalidateTags([{ type: "Account", id: message.data.exchange }]));
          }
          if (message.event === "twap_progress") {
            // Only state changes and slice completions are worth a line; repeats are noise.
            const key = `${message.data.state}:${message.data.slicesDone}`;
            if (lastPlanState[message.data.planId] === key) return;
            lastPlanState = { ...lastPlanState, [message.data.planId]: key };
          }
          feedSeq += 1;
          const item = { id: feedSeq, ...message } as FeedEvent;
          updateCachedData((draft) => {
            draft.events.unshift(item);
            if (draft.events.length > FEED_LIMIT) draft.events.length = FEED_LIMIT;
          });
        });
        await cacheEntryRemoved;
        stop();
        release();
      },
    }),
  }),
});

export const { useGetExchangesQuery, useGetAccountQuery, useEventFeedQuery } = dashboardApi;

export function isEmulator(exchanges: ExchangeStatus[] | undefined): boolean {
  return (exchanges ?? []).some((e) => e.venue === "emulator");
}
