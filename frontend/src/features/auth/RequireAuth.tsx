/** Gate for the desk: asks /api/auth/me once; logged-out users go to /login. */
import { Result, Spin } from "antd";
import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router-dom";
import { toApiError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { useMeQuery } from "./authApi";

export function RequireAuth({ children }: { children: ReactNode }) {
  const { data, error, isLoading } = useMeQuery();
  const location = useLocation();
  if (isLoading) {
    return (
      <div style={{ padding: 64, textAlign: "center" }}>
        <Spin size="large" />
      </div>
    );
  }
  if (error) {
    const code = toApiError(error).code;
    if (code === "AUTHENTICATION_REQUIRED" || code === "PERMISSION_DENIED") {
      return <Navigate to="/login" replace state={{ from: location.pathname }} />;
    }
    return (
      <Result status="warning" title="Cannot reach the desk" extra={<ApiErrorAlert error={error} what="Session check" />} />
    );
  }
  if (!data) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}
