import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  ERROR_MESSAGES,
  describeError,
  fieldErrorsToFormFields,
  humanizeCode,
  isEndpointMissing,
  isRiskError,
  toApiError,
} from "./errors";

describe("error codes", () => {
  it("has a human message for every backend code", () => {
    for (const code of ERROR_CODES) {
      expect(ERROR_MESSAGES[code]).toBeTruthy();
      expect(humanizeCode(code)).not.toContain("_");
    }
  });

  it("describes an envelope error with its human text, detail and code", () => {
    const text = describeError({ status: 409, code: "RISK_REJECTED", message: "slippage above limit" });
    expect(text).toBe("Rejected by risk controls: slippage above limit (RISK_REJECTED)");
  });

  it("keeps unknown codes readable", () => {
    expect(humanizeCode("SOMETHING_NEW")).toBe("something new");
    expect(describeError({ status: 400, code: "SOMETHING_NEW", message: "x" })).toBe("something new: x (SOMETHING_NEW)");
  });

  it("turns non-envelope errors into BAD_RESPONSE instead of throwing", () => {
    expect(toApiError(undefined).code).toBe("BAD_RESPONSE");
    expect(toApiError({ message: "boom" }).message).toBe("boom");
  });

  it("recognises endpoints the backend does not have yet", () => {
    expect(isEndpointMissing({ status: 404, code: "NOT_FOUND", message: "No API endpoint at /api/risk/state." })).toBe(true);
    expect(isEndpointMissing({ status: 404, code: "NOT_FOUND", message: "Pair not found." })).toBe(false);
  });

  it("flags risk-related failures", () => {
    expect(isRiskError({ status: 409, code: "RISK_REJECTED", message: "" })).toBe(true);
    expect(isRiskError({ status: 502, code: "UPSTREAM_ERROR", message: "" })).toBe(false);
  });

  it("maps nested DRF field errors onto form paths", () => {
    const fields = fieldErrorsToFormFields({
      leg1: { symbol: ["Unknown symbol on bybit linear."] },
      threshold: ["Must be positive."],
      legs: [{}, { side: ["Invalid side."] }],
      non_field_errors: ["Legs must differ."],
    });
    expect(fields).toEqual([
      { name: ["leg1", "symbol"], errors: ["Unknown symbol on bybit linear."] },
      { name: ["threshold"], errors: ["Must be positive."] },
      { name: ["legs", 1, "side"], errors: ["Invalid side."] },
    ]);
  });
});
