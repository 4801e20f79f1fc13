/** Fills, failures, TWAP state changes and engine alerts as they arrive over the websocket. */
import { Card, Empty, Tag, Timeline, Typography } from "antd";
import { humanizeCode } from "../../api/errors";
import { useEventFeedQuery, type FeedEvent } from "./dashboardApi";

function describe(e: FeedEvent): { color: string; label: string; text: string } {
  switch (e.event) {
    case "order_submitted":
      return { color: "blue", label: "submitted", text: `${e.data.exchange} ${e.data.side} ${e.data.qty} ${e.data.symbol} (#${e.data.orderId})` };
    case "order_filled":
      return { color: "green", label: "filled", text: `${e.data.exchange} #${e.data.orderId}: ${e.data.qty} @ ${e.data.price}${e.data.paper ? " [paper]" : ""}` };
    case "order_failed":
      return { color: "red", label: "failed", text: `${e.data.exchange} #${e.data.orderId}: ${humanizeCode(e.data.code)} — ${e.data.message}` };
    case "twap_progress": {
      const cancelled = e.data.state === "cancelled" || e.data.state === "canceled";
      return {
        color: cancelled ? "gray" : e.data.state === "failed" ? "red" : "cyan",
        label: cancelled ? "cancelled" : `twap ${e.data.state}`,
        text: `${e.data.planId}: ${e.data.slicesDone}/${e.data.slicesTotal} slices, executed ${e.data.executed}`,
      };
    }
    case "engine_alert":
      return {
        color: e.data.severity === "info" ? "blue" : e.data.severity === "warning" ? "orange" : "red",
        label: `alert · ${e.data.severity}`,
        text: `${e.data.pairId ? `${e.data.pairId}: ` : ""}${e.data.message} (${e.data.code})`,
      };
    case "opportunity":
      return { color: "gold", label: "opportunity", text: `${e.data.pairId}: ${e.data.spreadPercent} %` };
  }
}

export function EventTimeline({ maxItems = 40 }: { maxItems?: number }) {
  const { data } = useEventFeedQuery();
  const events = data?.events.slice(0, maxItems) ?? [];
  return (
    <Card
      title="Live events"
      size="small"
      extra={<Typography.Text type="secondary">{data?.opportunities ?? 0} opportunities seen</Typography.Text>}
      data-testid="event-timeline"
    >
      {events.length === 0 ? (
        <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description="No fills, cancels or alerts yet" />
      ) : (
        <div style={{ maxHeight: 420, overflowY: "auto", paddingTop: 8 }}>
          <Timeline
            items={events.map((e) => {
              const d = describe(e);
              return {
                key: e.id,
                color: d.color,
                children: (
                  <div data-testid={`event-${e.event}`}>
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {new Date(e.data.ts ?? Date.now()).toLocaleTimeString()}
                    </Typography.Text>{" "}
                    <Tag color={d.color === "gray" ? "default" : d.color}>{d.label}</Tag>
                    <span>{d.text}</span>
                  </div>
                ),
              };
            })}
          />
        </div>
      )}
    </Card>
  );
}
