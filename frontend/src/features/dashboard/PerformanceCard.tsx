/** The performance monitor at a glance: overall status and each figure against its threshold. */
import { Card, Space, Tag, Tooltip, Typography } from "antd";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { formatMetric, useGetPerformanceQuery, type PerformanceMetric } from "./analyticsApi";

const STATUS: Record<string, { color: string; text: string }> = {
  ok: { color: "green", text: "ok" },
  degraded: { color: "red", text: "degraded" },
  no_data: { color: "default", text: "no data" },
};

function MetricLine({ name, m }: { name: string; m: PerformanceMetric }) {
  const sign = m.mustBe === "above" ? ">" : "<";
  const color = m.breached ? "red" : m.sufficient ? "green" : "default";
  return (
    <div data-testid={`perf-${name}`} data-breached={m.breached ? "true" : "false"} style={{ display: "flex", justifyContent: "space-between", gap: 8 }}>
      <Typography.Text style={{ fontSize: 12 }}>{m.label}</Typography.Text>
      <Tooltip title={m.sufficient ? `${m.samples} samples` : `only ${m.samples} of ${m.minSamples} samples needed to judge`}>
        <Tag color={color} style={{ marginInlineEnd: 0 }}>
          {formatMetric(m.value, m.unit)} ({sign} {formatMetric(m.threshold, m.unit)})
          {m.breached ? " breached" : ""}
          {m.alerting ? " · alert" : ""}
        </Tag>
      </Tooltip>
    </div>
  );
}

export function PerformanceCard() {
  const { data, error } = useGetPerformanceQuery(undefined, { pollingInterval: 15_000 });
  const status = STATUS[data?.status ?? ""] ?? { color: "default", text: data?.status ?? "…" };
  return (
    <Card
      title="Performance"
      size="small"
      data-testid="performance-card"
      extra={
        data ? (
          <Space size={4}>
            <Tag color={status.color} data-testid="performance-status">
              {status.text}
            </Tag>
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              last {Math.round(data.windowSeconds / 60)} min
            </Typography.Text>
          </Space>
        ) : null
      }
    >
      {error ? <ApiErrorAlert error={error} what="Performance monitor" testId="performance-error" /> : null}
      {data ? (
        <Space direction="vertical" size={4} style={{ width: "100%" }}>
          {Object.entries(data.metrics ?? {}).map(([name, m]) => (
            <MetricLine key={name} name={name} m={m} />
          ))}
        </Space>
      ) : null}
    </Card>
  );
}
