/** Per-pair opportunity statistics: how often the spread opened, how good and how long it stayed. */
import { Card, Table, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import type { HTMLAttributes } from "react";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { formatDuration, useGetOpportunityStatsQuery, type OpportunityStat } from "./analyticsApi";

function pct(value: number | null): string {
  return value === null || value === undefined ? "—" : `${value.toFixed(4)} %`;
}

const columns: ColumnsType<OpportunityStat> = [
  { title: "Pair", dataIndex: "pairId", key: "pairId", render: (id: string) => <Typography.Text strong>{id}</Typography.Text> },
  { title: "Opportunities", dataIndex: "count", key: "count", align: "right" },
  { title: "Open now", dataIndex: "open", key: "open", align: "right" },
  { title: "Avg net edge", dataIndex: "avgNetEdgePercent", key: "avg", align: "right", render: pct },
  { title: "Max net edge", dataIndex: "maxNetEdgePercent", key: "max", align: "right", render: pct },
  { title: "Time open", dataIndex: "totalOpenSeconds", key: "open-time", align: "right", render: (s: number) => formatDuration(s) },
  {
    title: "Last detected",
    dataIndex: "lastDetectedTs",
    key: "last",
    render: (ts: number | null) => (ts ? new Date(ts).toLocaleString() : "—"),
  },
];

export function OpportunityStats() {
  // Opportunities open and close on the server; a slow poll keeps the counts honest without a socket.
  const { data, error, isLoading } = useGetOpportunityStatsQuery(undefined, { pollingInterval: 15_000, refetchOnMountOrArgChange: true });
  return (
    <Card title="Opportunity statistics" size="small" data-testid="opportunity-stats">
      {error ? <ApiErrorAlert error={error} what="Opportunity statistics" testId="opportunity-stats-error" /> : null}
      {!error ? (
        <Table<OpportunityStat>
          rowKey="pairId"
          size="small"
          loading={isLoading}
          columns={columns}
          dataSource={data ?? []}
          pagination={false}
          scroll={{ x: "max-content" }}
          onRow={(row) => ({ "data-testid": `opportunity-stats-${row.pairId}` }) as HTMLAttributes<HTMLElement>}
          locale={{ emptyText: "No opportunity detected yet" }}
        />
      ) : null}
    </Card>
  );
}
