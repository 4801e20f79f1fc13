import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { SettingsPage } from "./SettingsPage";

describe("SettingsPage", () => {
  it("sends keys write-only, clears the fields, and never renders a stored key", async () => {
    const { calls } = mockFetch({
      "GET /api/settings/api": ok({ binance: { connected: false }, bybit: { connected: true }, okx: { connected: false }, bitget: { connected: false } }),
      "GET /api/exchanges": ok([{ name: "binance", connected: true, publicOnly: true, venue: "live", reachable: true, websocket: "live", streams: [] }]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "PUT /api/settings/api": { status: 200, body: { success: true } },
      "POST /api/settings/api/test": ok({ connected: true }),
    });
    renderWithProviders(<SettingsPage />);
    const key = (await screen.findByTestId("api-key-binance")) as HTMLInputElement;
    expect(key.type).toBe("password");
    fireEvent.change(key, { target: { value: "my-key" } });
    fireEvent.change(screen.getByTestId("api-secret-binance"), { target: { value: "my-secret" } });
    fireEvent.click(screen.getByTestId("api-save-binance"));

    await waitFor(() => expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ binance: { apiKey: "my-key", secret: "my-secret" } }));
    await waitFor(() => expect((screen.getByTestId("api-key-binance") as HTMLInputElement).value).toBe(""));

    fireEvent.click(screen.getByTestId("api-test-binance"));
    expect(await screen.findByTestId("api-test-result-binance")).toHaveTextContent("Connected");
    expect(calls.find((c) => c.url === "/api/settings/api/test")?.body).toEqual({ exchange: "binance" });
  });

  it("engages the kill switch only after confirmation", async () => {
    let engaged = false;
    const { calls } = mockFetch({
      "GET /api/risk/state": () => ok({ killSwitch: engaged, dailyPnl: -12.5 }),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/risk/kill-switch": (req) => {
        engaged = (req.body as { engaged: boolean }).engaged;
        return ok({ engaged });
      },
    });
    renderWithProviders(<SettingsPage />);
    const button = await screen.findByTestId("kill-switch");
    await waitFor(() => expect(button).toBeEnabled());
    fireEvent.click(button);
    expect(calls.some((c) => c.url === "/api/risk/kill-switch")).toBe(false);
    fireEvent.click(await screen.findByTestId("kill-switch-confirm"));
    await waitFor(() => expect(calls.find((c) => c.url === "/api/risk/kill-switch")?.body).toEqual({ engaged: true }));
    expect(await screen.findByTestId("kill-switch-engaged")).toBeInTheDocument();
  });

  it("edits the server's global risk limits and sends only the changed ones", async () => {
    const limits = {
      global: { maxOrderNotional: 5000, maxSlippagePercent: 0.5, breakerConsecutiveFailures: 3 },
      pairs: [{ pairId: "p1", overrides: { maxOrderNotional: 100 } }],
      updatedAt: 1726032000000,
      updatedBy: "ops",
    };
    const { calls } = mockFetch({
      "GET /api/risk/limits": ok(limits),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "PUT /api/risk/limits": (req) => ok({ ...limits, global: { ...limits.global, ...(req.body as { global: object }).global } }),
    });
    renderWithProviders(<SettingsPage />);
    const notional = (await screen.findByTestId("risk-maxOrderNotional")) as HTMLInputElement;
    await waitFor(() => expect(notional.value).toBe("5000"));
    expect(screen.queryByTestId("risk-global")).toBeNull();
    expect(screen.getByTestId("risk-limits-meta")).toHaveTextContent("last changed by ops");
    expect(screen.getByTestId("risk-limits-meta")).toHaveTextContent("1 pair(s) override");

    fireEvent.change(notional, { target: { value: "2500" } });
    fireEvent.click(screen.getByTestId("risk-limits-save"));
    await waitFor(() => expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ global: { maxOrderNotional: 2500 } }));
  });

  it("summarises the server's risk state: trading state, paused scopes, today's usage against limits", async () => {
    mockFetch({
      "GET /api/risk/state": ok({
        killSwitch: { engaged: false, reason: "" },
        global: { state: "active", reason: "", scope: "global" },
        states: [{ scope: "pair", id: "p1", state: "halted", reason: "circuit breaker open" }],
        breakers: [{ scope: "pair", id: "p1", status: "open" }],
        exposure: { venues: [], net: [] },
        today: { day: "2026-11-24", notional: 130.5, realisedPnl: 3.18, orders: 2, rejections: 0, limits: { maxDailyNotional: 50000, maxDailyLoss: 500 } },
      }),
    });
    renderWithProviders(<SettingsPage />);
    expect(await screen.findByTestId("risk-global-state")).toHaveTextContent("active");
    const summary = screen.getByTestId("risk-summary");
    expect(summary).toHaveTextContent("pair p1: halted (circuit breaker open)");
    expect(summary).toHaveTextContent("1 breaker(s) open");
    expect(summary).toHaveTextContent("130.5 of 50000 USDT");
    expect(summary).toHaveTextContent("3.18 (loss limit 500)");
    expect(screen.queryByTestId("kill-switch-engaged")).toBeNull();
  });

  it("shows missing risk endpoints as not available yet instead of crashing", async () => {
    mockFetch({});
    renderWithProviders(<SettingsPage />);
    expect(await screen.findByTestId("risk-limits-error")).toHaveTextContent("Risk limits is not available yet");
    expect(screen.getByTestId("risk-state-error")).toHaveTextContent("not available yet");
  });
});
