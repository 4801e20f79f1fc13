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
    getRiskLimits: build.query<RiskLimits, void>({
      query: () => "/risk/limits",
      providesTags: ["RiskLimits"],
    }),
    putRiskLimits: build.mutation<RiskLimits, RiskLimits>({
      query: (body) => ({ url: "/risk/limits", method: "PUT", body }),
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
