/**
 * The backend's error codes (arbsite/errors.py ErrorCode), mirrored once here with
 * human-readable explanations, so every screen reports failures the same way.
 */

export const ERROR_CODES = [
  "VALIDATION_ERROR",
  "NOT_FOUND",
  "RATE_LIMITED",
  "UPSTREAM_ERROR",
  "INSUFFICIENT_FUNDS",
  "RISK_REJECTED",
  "EXCHANGE_UNAVAILABLE",
  "AUTHENTICATION_REQUIRED",
  "PERMISSION_DENIED",
  "METHOD_NOT_ALLOWED",
  "CONFLICT",
  "INTERNAL_ERROR",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Client-side codes for failures that never produced an envelope. */
export type ClientErrorCode = "NETWORK_ERROR" | "BAD_RESPONSE";

export const ERROR_MESSAGES: Record<ErrorCode | ClientErrorCode, string> = {
  VALIDATION_ERROR: "Some fields are invalid",
  NOT_FOUND: "Not found",
  RATE_LIMITED: "Rate limited by the exchange — retry shortly",
  UPSTREAM_ERROR: "The exchange rejected the request",
  INSUFFICIENT_FUNDS: "Insufficient funds on the exchange account",
  RISK_REJECTED: "Rejected by risk controls",
  EXCHANGE_UNAVAILABLE: "The exchange cannot be reached",
  AUTHENTICATION_REQUIRED: "Please sign in",
  PERMISSION_DENIED: "You are not allowed to do this",
  METHOD_NOT_ALLOWED: "This action is not supported by the server",
  CONFLICT: "The request conflicts with the current state",
  INTERNAL_ERROR: "Internal server error (it has been logged)",
  NETWORK_ERROR: "Cannot reach the server",
  BAD_RESPONSE: "The server sent an unexpected response",
};

/** Nested field errors as DRF produces them: `{"leg1": {"symbol": ["..."]}, "qty": ["..."]}`. */
export type FieldErrors = { [field: string]: string | FieldErrors | Array<string | FieldErrors> };

/** What every failed request turns into (RTK Query's `error`). */
export interface ApiError {
  status: number;
  code: ErrorCode | ClientErrorCode | string;
  message: string;
  fields?: FieldErrors;
}

export function isKnownCode(code: string): code is ErrorCode | ClientErrorCode {
  return code in ERROR_MESSAGES;
}

export function humanizeCode(code: string): string {
  return isKnownCode(code) ? ERROR_MESSAGES[code] : code.replace(/_/g, " ").toLowerCase();
}

export function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ApiError).code === "string" &&
    typeof (value as ApiError).message === "string"
  );
}

/** Coerce anything RTK Query may hand back (including SerializedError) into an ApiError. */
export function toApiError(value: unknown): ApiError {
  if (isApiError(value)) return value;
  if (typeof value === "object" && value !== null && "message" in value) {
    return { status: 0, code: "BAD_RESPONSE", message: String((value as { message: unknown }).message) };
  }
  return { status: 0, code: "BAD_RESPONSE", message: "Unknown error" };
}

/** One line for toasts: "Rejected by risk controls: slippage above limit (RISK_REJECTED)". */
export function describeError(value: unknown): string {
  const err = toApiError(value);
  const human = humanizeCode(err.code);
  const detail = err.message && err.message !== human ? `: ${err.message}` : "";
  return `${human}${detail} (${err.code})`;
}

/** The backend answers unknown /api paths with NOT_FOUND "No API endpoint at ..."; the UI says "not available yet". */
export function isEndpointMissing(value: unknown): boolean {
  const err = toApiError(value);
  return (
    (err.code === "NOT_FOUND" && /no api endpoint/i.test(err.message)) ||
    err.code === "METHOD_NOT_ALLOWED"
  );
}

export function isRiskError(value: unknown): boolean {
  const code = toApiError(value).code;
  return code === "RISK_REJECTED" || code === "INSUFFICIENT_FUNDS";
}

/** Flatten nested DRF field errors into antd Form `setFields` entries (`name` is a path). */
export function fieldErrorsToFormFields(
  fields: FieldErrors | undefined,
  prefix: Array<string | number> = [],
): Array<{ name: Array<string | number>; errors: string[] }> {
  if (!fields) return [];
  const out: Array<{ name: Array<string | number>; errors: string[] }> = [];
  for (const [key, value] of Object.entries(fields)) {
    const name = key === "non_field_errors" ? prefix : [...prefix, /^\d+$/.test(key) ? Number(key) : key];
    if (typeof value === "string") {
      out.push({ name, errors: [value] });
    } else if (Array.isArray(value)) {
      const messages = value.filter((v): v is string => typeof v === "string");
      if (messages.length) out.push({ name, errors: messages });
      value.forEach((v, index) => {
        if (typeof v === "object" && v !== null) out.push(...fieldErrorsToFormFields(v, [...name, index]));
      });
    } else if (typeof value === "object" && value !== null) {
      out.push(...fieldErrorsToFormFields(value, name));
    }
  }
  return out.filter((f) => f.name.length > 0);
}
