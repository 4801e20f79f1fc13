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
          updateCachedData((draft) => {
            const plan = draft.find((p) => p.planId === u.planId);
            if (!plan) return;
            stateChanged = u.state !== undefined && u.state !== plan.state;
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
        });
        await cacheEntryRemoved;
        stop();
        release();
      },
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
      invalidatesTags: (_r, _e, { planId }) => [{ type: "Plan", id: planId }],
    }),
  }),
});

export const { useGetPlansQuery, useCreatePlanMutation, useDeletePlanMutation, useControlPlanMutation } = twapApi;
