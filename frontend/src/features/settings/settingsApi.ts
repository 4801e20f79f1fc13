import { api } from "../../api/api";

/** Per-exchange key status; the server never returns the keys themselves. */
export type ApiKeyStatus = Record<string, { connected: boolean; publicOnly?: boolean; [key: string]: unknown }>;

export interface ApiKeyInput {
  apiKey: string;
  secret: string;
  passphrase?: string;
}

export type RiskLimits = Record<string, number | string | boolean | null>;
export type RiskState = Record<string, unknown>;

/** `GET /api/risk/limits`: global limits, per-pair overrides, who changed them last. */
export interface RiskLimitsBody {
  global: RiskLimits;
  pairs: Array<{ pairId: string; overrides: RiskLimits; effective?: RiskLimits }>;
  updatedAt: number | null;
  updatedBy: string | null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The server nests limits under `global`; a flat object of limits is read as the global ones. */
export function normalizeLimits(data: unknown): RiskLimitsBody {
  const raw = isPlainObject(data) ? data : {};
  const source = isPlainObject(raw.global) ? raw.global : raw;
  const global: RiskLimits = {};
  for (const [key, value] of Object.entries(source)) {
    if (value === null || ["number", "string", "boolean"].includes(typeof value)) global[key] = value as RiskLimits[string];
  }
  if (!isPlainObject(raw.global)) {
    delete global.updatedAt;
    delete global.updatedBy;
  }
  return {
    global,
    pairs: Array.isArray(raw.pairs) ? (raw.pairs as RiskLimitsBody["pairs"]) : [],
    updatedAt: typeof raw.updatedAt === "number" ? raw.updatedAt : null,
    updatedBy: typeof raw.updatedBy === "string" && raw.updatedBy ? raw.updatedBy : null,
  };
}

export const settingsApi = api.injectEndpoints({
  endpoints: (build) => ({
    getApiSettings: build.query<ApiKeyStatus, void>({
      query: () => "/settings/api",
      providesTags: ["ApiSettings"],
    }),
    putApiKeys: build.mutation<unknown, Record<string, ApiKeyInput>>({
      query: (body) => ({ url: "/settings/api", method: "PUT", body }),
      invalidatesTags: ["ApiSettings", "Exchange", "Account"],
    }),
    testApiKeys: build.mutation<{ connected: boolean; [key: string]: unknown }, string>({
      query: (exchange) => ({ url: "/settings/api/test", method: "POST", body: { exchange } }),
      invalidatesTags: ["ApiSettings"],
    }),
    getRiskLimits: build.query<RiskLimitsBody, void>({
      query: () => "/risk/limits",
      transformResponse: normalizeLimits,
      providesTags: ["RiskLimits"],
    }),
    /** Global limits only (partial updates: the server audits each changed field). */
    putRiskLimits: build.mutation<RiskLimitsBody, RiskLimits>({
      query: (global) => ({ url: "/risk/limits", method: "PUT", body: { global } }),
      transformResponse: normalizeLimits,
      invalidatesTags: ["RiskLimits", "RiskState"],
    }),
    getRiskState: build.query<RiskState, void>({
      query: () => "/risk/state",
      providesTags: ["RiskState"],
    }),
    setKillSwitch: build.mutation<unknown, boolean>({
      query: (engaged) => ({ url: "/risk/kill-switch", method: "POST", body: { engaged } }),
      invalidatesTags: ["RiskState"],
    }),
  }),
});

export const {
  useGetApiSettingsQuery,
  usePutApiKeysMutation,
  useTestApiKeysMutation,
  useGetRiskLimitsQuery,
  usePutRiskLimitsMutation,
  useGetRiskStateQuery,
  useSetKillSwitchMutation,
} = settingsApi;

/** The kill switch flag under whichever name the state uses. */
export function killSwitchEngaged(state: RiskState | undefined): boolean {
  if (!state) return false;
  const candidates = [state.killSwitch, state.killSwitchEngaged, state.kill_switch, state.engaged];
  for (const value of candidates) {
    if (typeof value === "boolean") return value;
    if (value && typeof value === "object" && typeof (value as { engaged?: unknown }).engaged === "boolean") {
      return (value as { engaged: boolean }).engaged;
    }
  }
  return false;
}

/** "maxOrderNotional" -> "Max order notional". */
export function humanizeKey(key: string): string {
  const words = key.replace(/_/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
