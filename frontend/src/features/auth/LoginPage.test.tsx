import { fireEvent, screen, waitFor } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { AppRoutes } from "../../app/AppRoutes";
import { FakeWebSocket } from "../../test/FakeWebSocket";
import { fail, mockFetch, ok } from "../../test/mockFetch";
import { renderWithProviders } from "../../test/renderWithProviders";

const loggedOut = fail(403, "AUTHENTICATION_REQUIRED", "Authentication credentials were not provided.");

async function fillAndSubmit(username: string, password: string) {
  fireEvent.change(await screen.findByTestId("login-username"), { target: { value: username } });
  fireEvent.change(screen.getByTestId("login-password"), { target: { value: password } });
  fireEvent.click(screen.getByTestId("login-submit"));
}

describe("login flow", () => {
  beforeEach(() => FakeWebSocket.reset());

  it("redirects to login, signs in with CSRF, then shows the desk", async () => {
    let signedIn = false;
    const { calls } = mockFetch({
      "GET /api/auth/me": () => (signedIn ? ok({ user: { username: "ops", isStaff: true } }) : loggedOut),
      "GET /api/auth/csrf": ok({ csrfToken: "csrf-from-server" }),
      "POST /api/auth/login": (req) => {
        signedIn = true;
        expect(req.body).toEqual({ username: "ops", password: "s3cret" });
        return ok({ user: { username: "ops", isStaff: true }, csrfToken: "rotated" });
      },
      "GET /api/exchanges": ok([{ name: "binance", connected: true, publicOnly: true, venue: "emulator", reachable: true, websocket: true, lastUpdateAgeMs: 120, streams: [] }]),
      "GET /api/monitoring/pairs": ok([]),
    });
    renderWithProviders(<AppRoutes />, { route: "/" });

    await fillAndSubmit("ops", "s3cret");

    expect(await screen.findByText("ops")).toBeInTheDocument();
    expect(screen.getByTestId("logout")).toBeInTheDocument();
    const login = calls.find((c) => c.method === "POST" && c.url === "/api/auth/login");
    expect(login?.headers["X-CSRFToken"]).toBe("csrf-from-server");
    // The desk opens the websocket once signed in, and the emulator venue is unmissable.
    await waitFor(() => expect(FakeWebSocket.instances.length).toBe(1));
    expect(await screen.findByTestId("venue-badge")).toHaveTextContent("EMULATOR");
    expect(await screen.findByTestId("emulator-banner")).toBeInTheDocument();
  });

  it("shows the envelope's message for wrong credentials and stays on the form", async () => {
    mockFetch({
      "GET /api/auth/me": loggedOut,
      "GET /api/auth/csrf": ok({ csrfToken: "t" }),
      "POST /api/auth/login": fail(401, "AUTHENTICATION_REQUIRED", "Wrong username or password."),
    });
    renderWithProviders(<AppRoutes />, { route: "/login" });

    await fillAndSubmit("ops", "nope");

    const alert = await screen.findByTestId("login-error");
    expect(alert).toHaveTextContent("Wrong username or password.");
    expect(alert).toHaveTextContent("AUTHENTICATION_REQUIRED");
    expect(screen.getByTestId("login-submit")).toBeInTheDocument();
  });

  it("explains throttling and network failures readably", async () => {
    mockFetch({
      "GET /api/auth/me": loggedOut,
      "GET /api/auth/csrf": ok({ csrfToken: "t" }),
      "POST /api/auth/login": fail(429, "RATE_LIMITED", "Request was throttled."),
    });
    renderWithProviders(<AppRoutes />, { route: "/login" });
    await fillAndSubmit("ops", "x");
    expect(await screen.findByTestId("login-error")).toHaveTextContent("Rate limited");
  });

  it("requires both fields before calling the server", async () => {
    const { calls } = mockFetch({ "GET /api/auth/me": loggedOut });
    renderWithProviders(<AppRoutes />, { route: "/login" });
    fireEvent.click(await screen.findByTestId("login-submit"));
    expect(await screen.findByText("Enter your username")).toBeInTheDocument();
    expect(calls.some((c) => c.url === "/api/auth/login")).toBe(false);
  });

  it("sends the user back to login when the session expires mid-use", async () => {
    let expired = false;
    mockFetch({
      "GET /api/auth/me": () => (expired ? loggedOut : ok({ user: { username: "ops", isStaff: false } })),
      "GET /api/monitoring/pairs": () => {
        expired = true;
        return fail(403, "AUTHENTICATION_REQUIRED", "Authentication credentials were not provided.");
      },
    });
    renderWithProviders(<AppRoutes />, { route: "/arbitrage" });
    expect(await screen.findByTestId("login-username")).toBeInTheDocument();
  });
});
