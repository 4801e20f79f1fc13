import { describe, expect, it, vi } from "vitest";
import { canDrawCharts } from "./canvas";

describe("canDrawCharts", () => {
  it("is false without a 2D canvas context (test DOMs, hardened browsers)", () => {
    expect(canDrawCharts()).toBe(false);
  });

  it("is true when the browser gives a 2D context, false when asking throws", () => {
    const spy = vi.spyOn(HTMLCanvasElement.prototype, "getContext");
    spy.mockReturnValueOnce({} as CanvasRenderingContext2D);
    expect(canDrawCharts()).toBe(true);
    spy.mockImplementationOnce(() => {
      throw new Error("blocked");
    });
    expect(canDrawCharts()).toBe(false);
    spy.mockRestore();
  });
});
