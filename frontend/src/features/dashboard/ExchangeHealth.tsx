import { Alert, Badge, Card, Col, Row, Space, Tag, Tooltip, Typography } from "antd";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { isEmulator, useGetExchangesQuery, type ExchangeStatus } from "./dashboardApi";

const STALE_MS = 5_000;

export function VenueTag({ venue }: { venue?: string }) {
  if (venue === "emulator") {
    return (
      <Tag color="#cf1322" style={{ fontWeight: 700, letterSpacing: 1 }} data-testid="venue-emulator">
        EMULATOR
      </Tag>
    );
  }
  if (venue === "live") return <Tag color="green" data-testid="venue-live">LIVE</Tag>;
  return null;
}

type Health = { status: "success" | "warning" | "error" | "default"; text: string };

export function exchangeHealth(ex: ExchangeStatus): Health {
  if (ex.reachable === false) return { status: "error", text: "unreachable" };
  if (ex.websocket === "down") return { status: "error", text: "streams down (REST fallback)" };
  if (ex.websocket === "degraded") return { status: "warning", text: "some streams down" };
  if (ex.lastUpdateAgeMs !== undefined && ex.lastUpdateAgeMs !== null && ex.lastUpdateAgeMs > STALE_MS) {
    return { status: "warning", text: `stale (${(ex.lastUpdateAgeMs / 1000).toFixed(1)} s)` };
  }
  if (ex.reachable === null || ex.reachable === undefined || ex.websocket === "idle") {
    return { status: "default", text: "idle (no legs watched)" };
  }
  return { status: "success", text: "healthy" };
}

const WS_COLORS: Record<string, string> = { live: "green", degraded: "orange", down: "red", idle: "default" };
const STREAM_COLORS: Record<string, string> = { live: "green", connecting: "blue", reconnecting: "orange", stale: "orange", error: "red" };

function websocketLabel(ws: ExchangeStatus["websocket"]): string {
  if (typeof ws === "boolean") return ws ? "live" : "down";
  return ws ?? "idle";
}

export function ExchangeHealth() {
  const { data, error } = useGetExchangesQuery(undefined, { pollingInterval: 5_000 });
  return (
    <Card title="Exchanges" size="small">
      {error ? <ApiErrorAlert error={error} what="Exchange status" testId="exchanges-error" /> : null}
      {isEmulator(data) ? (
        <Alert
          type="error"
          showIcon
          style={{ marginBottom: 12 }}
          data-testid="emulator-banner"
          message="EMULATOR venue — market data and orders go to the local venue emulator, not the real exchanges."
        />
      ) : null}
      <Row gutter={[12, 12]}>
        {(data ?? []).map((ex) => {
          const h = exchangeHealth(ex);
          const wsLabel = websocketLabel(ex.websocket);
          return (
            <Col key={ex.name} xs={24} sm={12} lg={6}>
              <Card
                size="small"
                data-testid={`exchange-${ex.name}`}
                style={ex.venue === "emulator" ? { borderColor: "#cf1322", borderWidth: 2 } : undefined}
              >
                <Space direction="vertical" size={4} style={{ width: "100%" }}>
                  <Space style={{ justifyContent: "space-between", width: "100%" }}>
                    <Typography.Text strong style={{ textTransform: "capitalize" }}>
                      {ex.name}
                    </Typography.Text>
                    <VenueTag venue={ex.venue} />
                  </Space>
                  <Badge status={h.status} text={h.text} data-testid={`exchange-${ex.name}-health`} />
                  <Space size={4} wrap>
                    {ex.publicOnly ? (
                      <Tooltip title="No API keys: market data only, executions are paper fills against live books.">
                        <Tag color="purple">publicOnly · paper</Tag>
                      </Tooltip>
                    ) : (
                      <Tag color="blue">keys · live trading</Tag>
                    )}
                    <Tag color={WS_COLORS[wsLabel] ?? "default"} data-testid={`exchange-${ex.name}-ws`}>
                      ws {wsLabel}
                    </Tag>
                  </Space>
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {ex.streams?.length ?? 0} stream(s)
                    {ex.lastUpdateAgeMs !== undefined && ex.lastUpdateAgeMs !== null
                      ? ` · last update ${(ex.lastUpdateAgeMs / 1000).toFixed(1)} s ago`
                      : ""}
                  </Typography.Text>
                  {(ex.streams ?? []).slice(0, 6).map((st) => (
                    <Tooltip key={st.instrument} title={st.error ? `${st.error.code}: ${st.error.message}` : `${st.reconnects ?? 0} reconnect(s)`}>
                      <div style={{ fontSize: 12, display: "flex", justifyContent: "space-between" }}>
                        <span style={{ fontFamily: "monospace" }}>{st.instrument}</span>
                        <Tag color={STREAM_COLORS[st.state] ?? "default"} style={{ marginInlineEnd: 0 }}>
                          {st.state}
                          {st.ageMs !== undefined && st.ageMs !== null ? ` ${(st.ageMs / 1000).toFixed(1)}s` : ""}
                        </Tag>
                      </div>
                    </Tooltip>
                  ))}
                  {ex.lastError ? (
                    <Typography.Text type="danger" style={{ fontSize: 12 }} data-testid={`exchange-${ex.name}-last-error`}>
                      {ex.lastError.code}: {ex.lastError.message}
                    </Typography.Text>
                  ) : null}
                </Space>
              </Card>
            </Col>
          );
        })}
      </Row>
    </Card>
  );
}
