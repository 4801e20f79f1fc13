import { Card, Col, Empty, Row, Skeleton, Space, Typography } from "antd";
import { lazy, Suspense } from "react";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { usePairsWithPrices } from "../arbitrage/ArbitragePage";
import { formatPercent } from "../arbitrage/spread";
import { AccountCard } from "./AccountCard";
import { EventTimeline } from "./EventTimeline";
import { ExchangeHealth } from "./ExchangeHealth";
import { OpportunityStats } from "./OpportunityStats";
import { PerformanceCard } from "./PerformanceCard";
import { PnlCard } from "./PnlCard";

// The chart library is the largest dependency; load it only with the dashboard.
const SpreadChart = lazy(() => import("./SpreadChart"));

function SpreadHistory() {
  const { pairsQuery, prices } = usePairsWithPrices();
  const pairs = pairsQuery.data ?? [];
  return (
    <Card title="Spread history (top of book)" size="small">
      {pairsQuery.error ? <ApiErrorAlert error={pairsQuery.error} what="Pairs" compact /> : null}
      {pairs.length === 0 && !pairsQuery.error ? <Empty description="No pairs configured" /> : null}
      <Row gutter={[12, 12]}>
        {pairs.map((p) => {
          const points = prices?.spreadHistory[p.id] ?? [];
          const last = points[points.length - 1];
          return (
            <Col key={p.id} xs={24} xl={12}>
              <Card
                size="small"
                type="inner"
                data-testid={`spread-chart-${p.id}`}
                title={
                  <Space>
                    {p.id}
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {p.leg1.exchange}/{p.leg1.type} vs {p.leg2.exchange}/{p.leg2.type}
                    </Typography.Text>
                  </Space>
                }
                extra={<Typography.Text strong>{formatPercent(last?.value)}</Typography.Text>}
              >
                {points.length === 0 ? (
                  <Typography.Text type="secondary">Waiting for prices on both legs…</Typography.Text>
                ) : (
                  <Suspense fallback={<Skeleton active paragraph={{ rows: 3 }} />}>
                    <SpreadChart points={points} threshold={p.threshold} />
                  </Suspense>
                )}
              </Card>
            </Col>
          );
        })}
      </Row>
    </Card>
  );
}

export function Dashboard() {
  return (
    <Space direction="vertical" size="middle" style={{ width: "100%" }}>
      <ExchangeHealth />
      <Row gutter={16}>
        <Col xs={24} xl={16}>
          <Space direction="vertical" size="middle" style={{ width: "100%" }}>
            <SpreadHistory />
            <PnlCard />
            <OpportunityStats />
            <AccountCard />
          </Space>
        </Col>
        <Col xs={24} xl={8}>
          <Space direction="vertical" size="middle" style={{ width: "100%" }}>
            <PerformanceCard />
            <EventTimeline />
          </Space>
        </Col>
      </Row>
    </Space>
  );
}
