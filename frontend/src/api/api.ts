/**
 * The one RTK Query API for the backend. Feature folders add their endpoints with
 * `api.injectEndpoints`; this file only knows the envelope, CSRF and the tag names.
 */
import { createApi, type BaseQueryFn } from "@reduxjs/toolkit/query/react";
import type { ApiError, FieldErrors } from "./errors";

export interface RequestArgs {
  url: string;
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  params?: Record<string, string | number | boolean | undefined>;
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfTokenFromServer: string | null = null;

/** The login response also carries the token; remember it in case the cookie is not readable. */
export function rememberCsrfToken(token: string | null | undefined): void {
  if (token) csrfTokenFromServer = token;
}

export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie ? document.cookie.split(";") : []) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

async function csrfToken(): Promise<string | null> {
  const fromCookie = readCookie("csrftoken");
  if (fromCookie) return fromCookie;
  if (csrfTokenFromServer) return csrfTokenFromServer;
  try {
    const response = await fetch("/api/auth/csrf", { credentials: "same-origin" });
    const body: unknown = await response.json();
    const token = (body as { data?: { csrfToken?: string } }).data?.csrfToken;
    rememberCsrfToken(token);
  } catch {
    // The unsafe request below will fail with a readable 403 envelope instead.
  }
  return readCookie("csrftoken") ?? csrfTokenFromServer;
}

function buildUrl(url: string, params?: RequestArgs["params"]): string {
  const path = url.startsWith("/api") ? url : `/api${url.startsWith("/") ? "" : "/"}${url}`;
  if (!params) return path;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") query.set(key, String(value));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

interface Envelope {
  success: boolean;
  data?: unknown;
  error?: { code?: string; message?: string; fields?: FieldErrors };
}

function isEnvelope(value: unknown): value is Envelope {
  return typeof value === "object" && value !== null && typeof (value as Envelope).success === "boolean";
}

/** fetch + the `{"success", "data"|"error"}` envelope -> RTK Query's `{data}` / `{error: ApiError}`. */
export const envelopeBaseQuery: BaseQueryFn<RequestArgs | string, unknown, ApiError> = async (args, api) => {
  const { url, method = "GET", body, params } = typeof args === "string" ? { url: args } : args;
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method)) {
    const token = await csrfToken();
    if (token) headers["X-CSRFToken"] = token;
  }

  let response: Response;
  try {
    response = await fetch(buildUrl(url, params), {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: api.signal,
    });
  } catch (exc) {
    return { error: { status: 0, code: "NETWORK_ERROR", message: exc instanceof Error ? exc.message : String(exc) } };
  }

  let parsed: unknown = undefined;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }

  if (!isEnvelope(parsed)) {
    if (response.ok && text === "") return { data: null };
    return {
      error: {
        status: response.status,
        code: response.status === 404 ? "NOT_FOUND" : "BAD_RESPONSE",
        message: `HTTP ${response.status} ${response.statusText}`.trim(),
      },
    };
  }
  if (!parsed.success || !response.ok) {
    const err = parsed.error ?? {};
    // A session that expired mid-use: re-ask /auth/me, whose 401 sends the user to the login page.
    if (err.code === "AUTHENTICATION_REQUIRED" && !url.replace(/^\/api/, "").startsWith("/auth/")) {
      api.dispatch(backendApi.util.invalidateTags(["Me"]));
    }
    return {
      error: {
        status: response.status,
        code: err.code ?? "BAD_RESPONSE",
        message: err.message ?? `HTTP ${response.status}`,
        ...(err.fields ? { fields: err.fields } : {}),
      },
    };
  }
  // A view returning `{"success": true}` has no data key.
  return { data: "data" in parsed ? parsed.data : { success: true } };
};

export const api = createApi({
  reducerPath: "api",
  baseQuery: envelopeBaseQuery,
  tagTypes: ["Me", "Pair", "Execution", "Plan", "Exchange", "ApiSettings", "RiskLimits", "RiskState", "Account", "Token", "Stats", "Performance"],
  endpoints: () => ({}),
});

// The base query refers to the API it belongs to (for the session-expiry invalidation above).
const backendApi = api;
