import { api } from "../../api/api";
import type { ThunkExtra } from "../../app/store";

export interface TwapLeg {
  exchange: string;
  symbol: string;
  side: "buy" | "sell" | string;
  type: "market" | "limit" | string;
  marketType?: string;
}

export interface TwapProgress {
  executed: number;
  remaining: number;
  slicesDone: number;
  slicesTotal: number;
}

export interface TwapPlan {
  planId: string;
  name: string;
  totalQty: number;
  sliceQty: number;
  intervalMs: number;
  legs: TwapLeg[];
  state: string;
  /** Why the plan is paused/failed/cancelled (e.g. the engine paused it after refused slices). */
  stateReason?: string | null;
  progress: TwapProgress;
  lastExecutionTs?: number | null;
}

export interface TwapPlanInput {
  name: string;
  totalQty: number;
  sliceQty: number;
  intervalMs: number;
  legs: TwapLeg[];
}

/** One order a slice sent (`GET /api/twap/plans/{id}`, twap/serializers.py `slice_json`). */
export interface TwapSliceOrder {
  leg: number;
  clientOrderId: string;
  orderId: string | null;
  exchange: string;
  symbol: string;
  side: string;
  type: string;
  qty: number;
  status: string;
  filledQty: number;
  avgPrice: number | null;
  fee: number;
  paper: boolean;
  error: { code: string; message: string } | null;
}

export interface TwapSlice {
  index: number;
  qty: number;
  catchUp: boolean;
  state: string;
  dueTs: number | null;
  finishedTs: number | null;
  attempts: number;
  deferrals: number;
  note: string | null;
  orders: TwapSliceOrder[];
}

export interface TwapPlanDetail {
  planId: string;
  state: string;
  slices: TwapSlice[];
}

export interface SliceLegFill {
  filledQty: number;
  avgPrice: number | null;
  status: string | null;
  paper: boolean;
  orders: number;
}

/** A slice's orders on one leg folded into filled qty and a fill-weighted average price (a rerun may add orders). */
export function legFill(slice: TwapSlice, leg: number): SliceLegFill {
  const orders = slice.orders.filter((o) => o.leg === leg);
  let filled = 0;
  let notional = 0;
  for (const o of orders) {
    filled += o.filledQty;
    if (o.avgPrice !== null) notional += o.filledQty * o.avgPrice;
  }
  return {
    filledQty: Number(filled.toFixed(12)),
    avgPrice: filled > 0 && notional > 0 ? notional / filled : null,
    status: orders[orders.length - 1]?.status ?? null,
    paper: orders.some((o) => o.paper),
    orders: orders.length,
  };
}

/** Every error a slice met: its note (deferrals, refusals) and each order's error. */
export function sliceErrors(slice: TwapSlice): string[] {
  const out: string[] = [];
  for (const o of slice.orders) if (o.error) out.push(`leg ${o.leg}: ${o.error.message} (${o.error.code})`);
  if (slice.note) out.push(slice.note);
  return out;
}

/** The tag a plan's slice history is cached under (apart from the plan list's tags, so refetching one leaves the other). */
export const slicesTag = (planId: string) => ({ type: "Plan" as const, id: `slices:${planId}` });

export type TwapAction = "start" | "pause" | "resume" | "cancel";

type RawPlan = Partial<TwapPlan> & { id?: string | number; progress?: Partial<TwapProgress> } & Record<string, unknown>;

/** Accept `planId` or `id`, and fill progress from flat fields when the server sends them that way. */
export function normalizePlan(raw: RawPlan): TwapPlan {
  const totalQty = Number(raw.totalQty ?? 0);
  const sliceQty = Number(raw.sliceQty ?? 0);
  const p: Partial<TwapProgress> = raw.progress ?? {};
  const executed = Number(p.executed ?? raw.executed ?? 0);
  const slicesTotal = Number(p.slicesTotal ?? raw.slicesTotal ?? (sliceQty > 0 ? Math.ceil(totalQty / sliceQty) : 0));
  return {
    planId: String(raw.planId ?? raw.id ?? ""),
    name: String(raw.name ?? raw.planId ?? raw.id ?? ""),
    totalQty,
    sliceQty,
    intervalMs: Number(raw.intervalMs ?? 0),
    legs: Array.isArray(raw.legs) ? raw.legs : [],
    state: String(raw.state ?? "pending"),
    stateReason: typeof raw.stateReason === "string" && raw.stateReason ? raw.stateReason : null,
    progress: {
      executed,
      remaining: Number(p.remaining ?? raw.remaining ?? Math.max(0, totalQty - executed)),
      slicesDone: Number(p.slicesDone ?? raw.slicesDone ?? 0),
      slicesTotal,
    },
    lastExecutionTs: (raw.lastExecutionTs as number | null | undefined) ?? null,
  };
}

function asList(data: unknown): RawPlan[] {
  if (Array.isArray(data)) return data as RawPlan[];
  const results = (data as { results?: unknown } | null)?.results;
  return Array.isArray(results) ? (results as RawPlan[]) : [];
}

export const TERMINAL_STATES = new Set(["completed", "complete", "done", "cancelled", "canceled", "failed"]);

export const twapApi = api.injectEndpoints({
  endpoints: (build) => ({
    getPlans: build.query<TwapPlan[], void>({
      query: () => "/twap/plans",
      transformResponse: (data: unknown) => asList(data).map(normalizePlan),
      providesTags: (result) => [
        { type: "Plan" as const, id: "LIST" },
        ...(result ?? []).map((p) => ({ type: "Plan" as const, id: p.planId })),
      ],
      async onCacheEntryAdded(_arg, { cacheDataLoaded, cacheEntryRemoved, updateCachedData, extra, dispatch }) {
        const { ws } = extra as ThunkExtra;
        try {
          await cacheDataLoaded;
        } catch {
          return;
        }
        const release = ws.subscribe({ plans: ["*"] });
        const stop = ws.addListener((message) => {
          if (message.event !== "twap_progress") return;
          const u = message.data;
          let stateChanged = false;
          let sliceMoved = false;
          updateCachedData((draft) => {
            const plan = draft.find((p) => p.planId === u.planId);
            if (!plan) return;
            stateChanged = u.state !== undefined && u.state !== plan.state;
            sliceMoved = u.slicesDone !== plan.progress.slicesDone;
            plan.state = u.state ?? plan.state;
            plan.progress = {
              executed: u.executed,
              remaining: u.remaining,
              slicesDone: u.slicesDone,
              slicesTotal: u.slicesTotal,
            };
            // `ts` is when the event was sent (a pause sends one too), not when a slice executed.
            if (u.lastExecutionTs !== undefined) plan.lastExecutionTs = u.lastExecutionTs;
          });
          // The event has no reason for a state change (engine pause, failure): fetch the plan's.
          if (stateChanged) dispatch(twapApi.util.invalidateTags([{ type: "Plan", id: u.planId }]));
          // An open slice history refetches when a slice finished or the plan changed state.
          if (stateChanged || sliceMoved) dispatch(twapApi.util.invalidateTags([slicesTag(u.planId)]));
        });
        await cacheEntryRemoved;
        stop();
        release();
      },
    }),
    /** One plan with its slices and their orders: the per-slice history. */
    getPlanDetail: build.query<TwapPlanDetail, string>({
      query: (planId) => `/twap/plans/${encodeURIComponent(planId)}`,
      transformResponse: (data: unknown) => {
        const raw = (data ?? {}) as Partial<TwapPlanDetail>;
        return {
          planId: String(raw.planId ?? ""),
          state: String(raw.state ?? ""),
          slices: Array.isArray(raw.slices) ? raw.slices.map((s) => ({ ...s, orders: Array.isArray(s.orders) ? s.orders : [] })) : [],
        };
      },
      providesTags: (_r, _e, planId) => [slicesTag(planId)],
    }),
    createPlan: build.mutation<{ planId: string }, TwapPlanInput>({
      query: (body) => ({ url: "/twap/plans", method: "POST", body }),
      invalidatesTags: [{ type: "Plan", id: "LIST" }],
    }),
    deletePlan: build.mutation<unknown, string>({
      query: (planId) => ({ url: `/twap/plans/${encodeURIComponent(planId)}`, method: "DELETE" }),
      invalidatesTags: [{ type: "Plan", id: "LIST" }],
    }),
    controlPlan: build.mutation<unknown, { planId: string; action: TwapAction }>({
      query: ({ planId, action }) => ({ url: `/twap/${encodeURIComponent(planId)}/control`, method: "POST", body: { action } }),
      invalidatesTags: (_r, _e, { planId }) => [{ type: "Plan", id: planId }, slicesTag(planId)],
    }),
  }),
});

export const { useGetPlansQuery, useGetPlanDetailQuery, useCreatePlanMutation, useDeletePlanMutation, useControlPlanMutation } = twapApi;
