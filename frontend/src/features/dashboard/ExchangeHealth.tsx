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

function health(ex: ExchangeStatus): { status: "success" | "warning" | "error"; text: string } {
  if (ex.reachable === false || !ex.connected) return { status: "error", text: "unreachable" };
  if (ex.lastUpdateAgeMs !== undefined && ex.lastUpdateAgeMs !== null && ex.lastUpdateAgeMs > STALE_MS) {
    return { status: "warning", text: `stale (${(ex.lastUpdateAgeMs / 1000).toFixed(1)} s)` };
  }
  return { status: "success", text: "healthy" };
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
          const h = health(ex);
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
                    <Tag color={ex.websocket ? "green" : "orange"}>{ex.websocket ? "ws stream" : "REST fallback"}</Tag>
                  </Space>
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {ex.streams?.length ?? 0} stream(s)
                    {ex.lastUpdateAgeMs !== undefined && ex.lastUpdateAgeMs !== null
                      ? ` · last update ${(ex.lastUpdateAgeMs / 1000).toFixed(1)} s ago`
                      : ""}
                  </Typography.Text>
                </Space>
              </Card>
            </Col>
          );
        })}
      </Row>
    </Card>
  );
}
