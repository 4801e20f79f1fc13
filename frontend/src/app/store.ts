/**
 * The store: the one RTK Query API plus the websocket connection state. The websocket
 * client travels as the thunk `extra` argument so `onCacheEntryAdded` handlers (and tests)
 * reach the same instance.
 */
import { combineReducers, configureStore } from "@reduxjs/toolkit";
import { setupListeners } from "@reduxjs/toolkit/query";
import { api } from "../api/api";
import connectionReducer, { connectionChanged } from "./connectionSlice";
import { WsClient, type WsClientOptions } from "../services/websocket";

const rootReducer = combineReducers({
  [api.reducerPath]: api.reducer,
  connection: connectionReducer,
});

export type RootState = ReturnType<typeof rootReducer>;

export interface ThunkExtra {
  ws: WsClient;
}

export interface SetupStoreOptions {
  preloadedState?: Partial<RootState>;
  ws?: WsClient;
  wsOptions?: WsClientOptions;
}

export function setupStore({ preloadedState, ws, wsOptions }: SetupStoreOptions = {}) {
  // The client reports state changes through a late-bound dispatch (the store does not exist yet).
  let dispatchLater: ((action: ReturnType<typeof connectionChanged>) => void) | null = null;
  const client =
    ws ??
    new WsClient({
      ...wsOptions,
      onStateChange: (state, info) => {
        wsOptions?.onStateChange?.(state, info);
        dispatchLater?.(connectionChanged({ state, attempt: info.attempt, at: Date.now() }));
      },
    });
  const extra: ThunkExtra = { ws: client };
  const store = configureStore({
    reducer: rootReducer,
    preloadedState,
    middleware: (getDefault) => getDefault({ thunk: { extraArgument: extra } }).concat(api.middleware),
  });
  dispatchLater = store.dispatch;
  setupListeners(store.dispatch);
  return Object.assign(store, { ws: client });
}

export type AppStore = ReturnType<typeof setupStore>;
export type AppDispatch = AppStore["dispatch"];
