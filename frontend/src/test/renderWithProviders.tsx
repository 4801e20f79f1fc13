/** Render with a real store (real reducers, real RTK Query) and a FakeWebSocket-backed client. */
import { render, type RenderOptions } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router-dom";
import { Providers } from "../app/Providers";
import { setupStore, type AppStore } from "../app/store";
import type { SocketFactory } from "../services/websocket";
import { FakeWebSocket } from "./FakeWebSocket";

interface Options extends Omit<RenderOptions, "wrapper"> {
  store?: AppStore;
  route?: string;
}

export function makeTestStore(): AppStore {
  return setupStore({
    wsOptions: {
      url: "ws://test/ws",
      WebSocketImpl: FakeWebSocket as unknown as SocketFactory,
      baseDelayMs: 10,
      maxDelayMs: 100,
      pingIntervalMs: 0,
      random: () => 0,
    },
  });
}

export function renderWithProviders(ui: ReactElement, { store = makeTestStore(), route = "/", ...options }: Options = {}) {
  const result = render(
    <Providers store={store}>
      <MemoryRouter initialEntries={[route]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>{ui}</MemoryRouter>
    </Providers>,
    options,
  );
  return { store, ...result };
}
