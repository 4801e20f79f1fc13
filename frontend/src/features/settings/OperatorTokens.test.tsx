import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { fail, mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";
import { OperatorTokens } from "./OperatorTokens";

const KEY = "arb_Zq3xSECRETSECRETSECRETSECRET0123456789";

const TOKENS = [
  { id: 1, name: "rebalancer", prefix: "arb_AbCd", createdAt: 1_700_000_000_000, lastUsedAt: 1_700_000_500_000, revoked: false },
  { id: 2, name: "old-cron", prefix: "arb_EfGh", createdAt: 1_690_000_000_000, lastUsedAt: null, revoked: true },
];

describe("OperatorTokens (mock fetch)", () => {
  it("lists tokens with their state; revoked ones cannot be revoked again", async () => {
    mockFetch({ "GET /api/auth/tokens": ok(TOKENS) });
    renderWithProviders(<OperatorTokens />);
    const active = await screen.findByTestId("token-row-1");
    expect(active).toHaveTextContent("rebalancer");
    expect(active).toHaveTextContent("arb_AbCd…");
    expect(within(active).getByTestId("token-1-status")).toHaveTextContent("active");
    const revoked = screen.getByTestId("token-row-2");
    expect(within(revoked).getByTestId("token-2-status")).toHaveTextContent("revoked");
    expect(revoked).toHaveTextContent("never");
    expect(screen.queryByTestId("token-2-revoke")).toBeNull();
  });

  it("shows a new key once, with the warning, and keeps it nowhere in the store after the modal closes", async () => {
    let tokens = [TOKENS[0]];
    const { calls } = mockFetch({
      "GET /api/auth/tokens": () => ok(tokens),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/auth/tokens": (req) => {
        const created = { id: 3, name: (req.body as { name: string }).name, prefix: "arb_Zq3x", createdAt: 1_700_001_000_000, lastUsedAt: null, revoked: false };
        tokens = [...tokens, created];
        return { status: 201, body: { success: true, data: { ...created, key: KEY } } };
      },
    });
    const { store } = renderWithProviders(<OperatorTokens />);
    await screen.findByTestId("token-row-1");
    fireEvent.change(screen.getByTestId("token-name"), { target: { value: "  grafana  " } });
    fireEvent.click(screen.getByTestId("token-create"));

    const field = (await screen.findByTestId("token-key")) as HTMLInputElement;
    expect(field.value).toBe(KEY);
    expect(field.readOnly).toBe(true);
    expect(screen.getByTestId("token-key-warning")).toHaveTextContent("you will not see it again");
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "grafana" });
    expect(await screen.findByTestId("token-row-3")).toHaveTextContent("grafana");
    // The list never carries the key; only the mutation result does, until the modal closes.
    expect(JSON.stringify(store.getState().api.queries)).not.toContain(KEY);
    expect(JSON.stringify(store.getState().api.mutations)).toContain(KEY);

    fireEvent.click(screen.getByTestId("token-key-done"));
    await waitFor(() => expect(screen.queryByTestId("token-key")).toBeNull());
    expect(JSON.stringify(store.getState())).not.toContain(KEY);
    expect(document.body.innerHTML).not.toContain(KEY);
  });

  it("shows the server's field errors for a rejected name and opens no key modal", async () => {
    mockFetch({
      "GET /api/auth/tokens": ok([]),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "POST /api/auth/tokens": fail(400, "VALIDATION_ERROR", "Invalid input.", { name: ["Ensure this field has no more than 100 characters."] }),
    });
    renderWithProviders(<OperatorTokens />);
    fireEvent.change(await screen.findByTestId("token-name"), { target: { value: "x" } });
    fireEvent.click(screen.getByTestId("token-create"));
    expect(await screen.findByText("Ensure this field has no more than 100 characters.")).toBeInTheDocument();
    expect(screen.queryByTestId("token-key")).toBeNull();
  });

  it("revokes only after confirmation, and reports a failed revoke", async () => {
    let tokens = TOKENS;
    let revokeResult = fail(404, "NOT_FOUND", "No active token 1.");
    const { calls } = mockFetch({
      "GET /api/auth/tokens": () => ok(tokens),
      "GET /api/auth/csrf": ok({ csrfToken: "tok" }),
      "DELETE /api/auth/tokens/1": () => revokeResult,
    });
    renderWithProviders(<OperatorTokens />);
    fireEvent.click(await screen.findByTestId("token-1-revoke"));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    fireEvent.click(await screen.findByTestId("token-1-revoke-confirm"));
    expect(await screen.findByText("No active token 1.", { exact: false })).toBeInTheDocument();

    revokeResult = { status: 200, body: { success: true } };
    tokens = [{ ...TOKENS[0]!, revoked: true }, TOKENS[1]!];
    fireEvent.click(screen.getByTestId("token-1-revoke"));
    fireEvent.click(await screen.findByTestId("token-1-revoke-confirm"));
    await waitFor(() => expect(screen.getByTestId("token-1-status")).toHaveTextContent("revoked"));
    expect(calls.filter((c) => c.method === "DELETE" && c.url === "/api/auth/tokens/1")).toHaveLength(2);
  });

  it("shows a token-list error envelope", async () => {
    mockFetch({ "GET /api/auth/tokens": fail(403, "PERMISSION_DENIED", "Staff only.") });
    renderWithProviders(<OperatorTokens />);
    expect(await screen.findByTestId("tokens-error")).toHaveTextContent("Staff only.");
  });
});
