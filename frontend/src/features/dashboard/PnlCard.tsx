/** Realised PnL over time from the execution history; paper results are labelled and kept apart. */
import { Card, Empty, Skeleton, Space, Statistic, Tag, Typography } from "antd";
import { lazy, Suspense, useMemo } from "react";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { cumulativePnl, useGetPnlExecutionsQuery, type PnlSeries } from "./analyticsApi";

// Shares the chart library chunk with the spread charts; neither is in the entry bundle.
const PnlChart = lazy(() => import("./PnlChart"));

function Total({ label, series, paper, testId }: { label: string; series: PnlSeries; paper: boolean; testId: string }) {
  return (
    <div data-testid={testId}>
      <Statistic
        title={
          <Space size={4}>
            {label}
            {paper ? <Tag color="purple">PAPER</Tag> : <Tag color="green">LIVE</Tag>}
          </Space>
        }
        value={series.total}
        precision={4}
        suffix="USDT"
        valueStyle={{ fontSize: 18, color: series.total < 0 ? "#cf1322" : series.total > 0 ? "#389e0d" : undefined }}
      />
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {series.count} execution(s), fees {series.fees.toFixed(4)}
      </Typography.Text>
    </div>
  );
}

export function PnlCard() {
  const { data, error, isLoading } = useGetPnlExecutionsQuery(undefined, { pollingInterval: 30_000, refetchOnMountOrArgChange: true });
  const history = useMemo(() => cumulativePnl(data?.items ?? []), [data]);
  const hasPoints = history.live.points.length > 0 || history.paper.points.length > 0;
  const partial = data && data.total > data.items.length;
  return (
    <Card
      title="Realised PnL"
      size="small"
      data-testid="pnl-card"
      loading={isLoading}
      extra={
        partial ? (
          <Typography.Text type="secondary" style={{ fontSize: 12 }} data-testid="pnl-coverage">
            latest {data.items.length} of {data.total} executions
          </Typography.Text>
        ) : null
      }
    >
      {error ? <ApiErrorAlert error={error} what="Execution history" testId="pnl-error" /> : null}
      {!error && data ? (
        <>
          <Space size={32} wrap style={{ marginBottom: 8 }}>
            <Total label="Live" series={history.live} paper={false} testId="pnl-live" />
            <Total label="Paper" series={history.paper} paper testId="pnl-paper" />
          </Space>
          {hasPoints ? (
            <Suspense fallback={<Skeleton active paragraph={{ rows: 3 }} />}>
              <div role="img" aria-label={`Cumulative PnL: live ${history.live.total.toFixed(4)} USDT, paper ${history.paper.total.toFixed(4)} USDT`}>
                <PnlChart history={history} />
              </div>
            </Suspense>
          ) : (
            <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description="No executions with a realised PnL yet" />
          )}
        </>
      ) : null}
    </Card>
  );
}
