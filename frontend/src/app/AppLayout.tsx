/** Shell for the signed-in desk: navigation, connection indicator, venue badge, global alerts. */
import { Alert, Badge, Button, Layout, Menu, Space, Tag, Tooltip, Typography, App as AntApp } from "antd";
import { useEffect } from "react";
import { Link, Outlet, useLocation, useNavigate } from "react-router-dom";
import { api } from "../api/api";
import { humanizeCode } from "../api/errors";
import { useLogoutMutation, useMeQuery } from "../features/auth/authApi";
import { isEmulator, useEventFeedQuery, useGetExchangesQuery } from "../features/dashboard/dashboardApi";
import type { ConnectionState } from "../services/websocket";
import { useAppDispatch, useAppSelector, useWs } from "./hooks";

const NAV = [
  { key: "/", label: "Dashboard" },
  { key: "/arbitrage", label: "Arbitrage" },
  { key: "/twap", label: "TWAP" },
  { key: "/settings", label: "Settings" },
];

const CONNECTION_BADGE: Record<ConnectionState, { status: "success" | "processing" | "warning" | "error" | "default"; text: string }> = {
  idle: { status: "default", text: "Live: idle" },
  connecting: { status: "processing", text: "Live: connecting" },
  open: { status: "success", text: "Live: connected" },
  reconnecting: { status: "warning", text: "Live: reconnecting" },
  unauthorized: { status: "error", text: "Live: signed out" },
  closed: { status: "default", text: "Live: closed" },
};

export function ConnectionIndicator() {
  const { state, attempt } = useAppSelector((s) => s.connection);
  const badge = CONNECTION_BADGE[state];
  return (
    <Tooltip title={state === "reconnecting" ? `Retry #${attempt}; prices on screen may be stale` : "Websocket to the desk"}>
      <Badge status={badge.status} text={<span style={{ color: "#fff" }}>{badge.text}</span>} data-testid="connection-indicator" data-state={state} />
    </Tooltip>
  );
}

function VenueBadge() {
  const { data } = useGetExchangesQuery(undefined, { pollingInterval: 15_000 });
  if (!data) return null;
  const emulator = isEmulator(data);
  const paper = data.some((e) => e.publicOnly);
  return (
    <Space size={4}>
      {emulator ? (
        <Tag color="#cf1322" style={{ fontWeight: 700, letterSpacing: 1 }} data-testid="venue-badge" data-venue="emulator">
          EMULATOR
        </Tag>
      ) : (
        <Tag color="green" data-testid="venue-badge" data-venue="live">
          LIVE
        </Tag>
      )}
      {paper ? (
        <Tooltip title="At least one exchange has no API keys: its executions are paper fills against live order books.">
          <Tag color="purple" data-testid="paper-badge">
            PAPER
          </Tag>
        </Tooltip>
      ) : null}
    </Space>
  );
}

/** Pop up fills failures and engine alerts wherever the user is. */
function GlobalAlerts() {
  const ws = useWs();
  const { notification } = AntApp.useApp();
  useEventFeedQuery(); // keep the feed alive across pages
  useEffect(
    () =>
      ws.addListener((m) => {
        if (m.event === "engine_alert") {
          const severe = m.data.severity === "error" || m.data.severity === "critical";
          notification[severe ? "error" : "warning"]({
            message: `${m.data.pairId ? `${m.data.pairId}: ` : ""}${humanizeCode(m.data.code)}`,
            description: `${m.data.message} (${m.data.code})`,
            duration: severe ? 0 : 8,
          });
        } else if (m.event === "order_failed") {
          notification.error({
            message: `Order failed on ${m.data.exchange}`,
            description: `${m.data.message} (${m.data.code})`,
            duration: 10,
          });
        }
      }),
    [ws, notification],
  );
  return null;
}

export function AppLayout() {
  const ws = useWs();
  const dispatch = useAppDispatch();
  const navigate = useNavigate();
  const location = useLocation();
  const me = useMeQuery();
  const [logout] = useLogoutMutation();
  const state = useAppSelector((s) => s.connection.state);

  useEffect(() => {
    ws.connect();
    return () => ws.disconnect();
  }, [ws]);

  // The socket refuses a dead session (4401): re-check who we are, which redirects to /login.
  useEffect(() => {
    if (state === "unauthorized") dispatch(api.util.invalidateTags(["Me"]));
  }, [state, dispatch]);

  const onLogout = async () => {
    await logout();
    ws.disconnect();
    dispatch(api.util.resetApiState());
    navigate("/login", { replace: true });
  };

  const selected = NAV.find((n) => n.key !== "/" && location.pathname.startsWith(n.key))?.key ?? "/";

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <GlobalAlerts />
      <Layout.Header style={{ display: "flex", alignItems: "center", gap: 16, paddingInline: 16 }}>
        <Typography.Text strong style={{ color: "#fff", fontSize: 16, whiteSpace: "nowrap" }}>
          arbsite desk
        </Typography.Text>
        <Menu
          theme="dark"
          mode="horizontal"
          selectedKeys={[selected]}
          style={{ flex: 1, minWidth: 0 }}
          items={NAV.map((n) => ({ key: n.key, label: <Link to={n.key} data-testid={`nav-${n.label.toLowerCase()}`}>{n.label}</Link> }))}
        />
        <Space size="middle" style={{ color: "#fff" }}>
          <VenueBadge />
          <ConnectionIndicator />
          <Typography.Text style={{ color: "#bfbfbf" }}>{me.data?.username}</Typography.Text>
          <Button size="small" onClick={() => void onLogout()} data-testid="logout">
            Sign out
          </Button>
        </Space>
      </Layout.Header>
      <Layout.Content style={{ padding: 16, minWidth: 1180 }}>
        {state === "reconnecting" ? (
          <Alert
            type="warning"
            showIcon
            banner
            style={{ marginBottom: 12 }}
            data-testid="connection-lost"
            message="Live connection lost — reconnecting. Prices and progress on screen may be stale."
          />
        ) : null}
        <Outlet />
      </Layout.Content>
    </Layout>
  );
}
