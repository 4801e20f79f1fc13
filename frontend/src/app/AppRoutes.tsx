import { Result } from "antd";
import { Route, Routes } from "react-router-dom";
import { ArbitragePage } from "../features/arbitrage/ArbitragePage";
import { LoginPage } from "../features/auth/LoginPage";
import { RequireAuth } from "../features/auth/RequireAuth";
import { Dashboard } from "../features/dashboard/Dashboard";
import { SettingsPage } from "../features/settings/SettingsPage";
import { TwapPage } from "../features/twap/TwapPage";
import { AppLayout } from "./AppLayout";

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route
        element={
          <RequireAuth>
            <AppLayout />
          </RequireAuth>
        }
      >
        <Route index element={<Dashboard />} />
        <Route path="arbitrage" element={<ArbitragePage />} />
        <Route path="twap" element={<TwapPage />} />
        <Route path="settings" element={<SettingsPage />} />
        <Route path="*" element={<Result status="404" title="No such page" />} />
      </Route>
    </Routes>
  );
}
