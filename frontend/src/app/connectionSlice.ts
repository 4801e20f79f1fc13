/** The websocket's connection state, for the header indicator and "live data paused" hints. */
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { ConnectionState } from "../services/websocket";

export interface ConnectionSliceState {
  state: ConnectionState;
  attempt: number;
  since: number;
}

const initialState: ConnectionSliceState = { state: "idle", attempt: 0, since: 0 };

export const connectionSlice = createSlice({
  name: "connection",
  initialState,
  reducers: {
    connectionChanged(state, action: PayloadAction<{ state: ConnectionState; attempt: number; at: number }>) {
      state.state = action.payload.state;
      state.attempt = action.payload.attempt;
      state.since = action.payload.at;
    },
  },
});

export const { connectionChanged } = connectionSlice.actions;
export default connectionSlice.reducer;
