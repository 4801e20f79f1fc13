/**
 * Test-only fetch mock speaking the backend's envelope. Routes are "METHOD /api/path"
 * (query string ignored); anything unrouted answers like the real backend does for an
 * unknown path: 404 NOT_FOUND "No API endpoint at ...".
 */
import { vi } from "vitest";

export interface MockResponse {
  status?: number;
  body: unknown;
}
export type MockHandler = MockResponse | ((request: { url: string; method: string; body: unknown; headers: Record<string, string> }) => MockResponse);

export function ok(data: unknown): MockResponse {
  return { status: 200, body: { success: true, data } };
}

export function fail(status: number, code: string, message: string, fields?: unknown): MockResponse {
  return { status, body: { success: false, error: { code, message, ...(fields ? { fields } : {}) } } };
}

export interface MockedCall {
  url: string;
  method: string;
  body: unknown;
  headers: Record<string, string>;
}

export function mockFetch(routes: Record<string, MockHandler>) {
  const calls: MockedCall[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined;
    const call = { url, method, body, headers };
    calls.push(call);
    const path = url.split("?")[0];
    const handler = routes[`${method} ${path}`];
    const response = handler
      ? typeof handler === "function"
        ? handler(call)
        : handler
      : fail(404, "NOT_FOUND", `No API endpoint at ${path}.`);
    return new Response(JSON.stringify(response.body), {
      status: response.status ?? 200,
      headers: { "Content-Type": "application/json" },
    });
  });
  vi.stubGlobal("fetch", fn);
  return { fn, calls };
}
