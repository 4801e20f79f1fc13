import { PlusOutlined } from "@ant-design/icons";
import { Alert, App, Button, Card, Popconfirm, Space, Switch, Table, Tag, Tooltip, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useMemo, useState, type HTMLAttributes } from "react";
import { describeError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { Sparkline } from "../../components/Sparkline";
import {
  legKey,
  pairKeys,
  useDeletePairMutation,
  useGetExecutionsQuery,
  useGetPairsQuery,
  useLivePricesQuery,
  useUpdatePairMutation,
  type PairRow,
} from "./arbitrageApi";
import { ExecuteModal } from "./ExecuteModal";
import { PairFormDrawer } from "./PairFormDrawer";
import { bestSpread, formatPercent } from "./spread";
import type { Execution, LivePrices, Pair, Quote } from "./types";

/** Pairs plus their live quotes; Dashboard uses the same cache entry. */
export function usePairsWithPrices() {
  const pairsQuery = useGetPairsQuery();
  const keys = useMemo(() => pairKeys(pairsQuery.data), [pairsQuery.data]);
  const prices = useLivePricesQuery(keys, { skip: keys.length === 0 });
  return { pairsQuery, prices: prices.data as LivePrices | undefined };
}

function QuoteCell({ quote, testId }: { quote?: Quote; testId: string }) {
  if (!quote) {
    return (
      <Typography.Text type="secondary" data-testid={`${testId}-empty`}>
        waiting…
      </Typography.Text>
    );
  }
  return (
    <Space direction="vertical" size={0} style={{ fontFamily: "monospace", fontSize: 12 }}>
      <span>
        <Typography.Text type="success">bid</Typography.Text> <span data-testid={`${testId}-bid`}>{quote.bid}</span>
      </span>
      <span>
        <Typography.Text type="danger">ask</Typography.Text> <span data-testid={`${testId}-ask`}>{quote.ask}</span>
      </span>
    </Space>
  );
}

function legText(leg: Pair["leg1"]) {
  return (
    <span>
      <Tag>{leg.exchange}</Tag>
      {leg.symbol} <Typography.Text type="secondary">{leg.type}</Typography.Text>
    </span>
  );
}

// trading.execution_models.ExecutionState
const STATE_COLORS: Record<string, string> = {
  pending: "blue",
  running: "blue",
  leg_risk: "orange",
  completed: "green",
  hedged: "orange",
  flattened: "orange",
  rejected: "red",
  failed: "red",
  unresolved: "magenta",
};

function ExecutionsList({ pairId }: { pairId: string }) {
  const { data, error, isFetching } = useGetExecutionsQuery(pairId);
  if (error) return <ApiErrorAlert error={error} what="Execution history" compact />;
  const columns: ColumnsType<Execution> = [
    { title: "Time", dataIndex: "ts", render: (ts: number) => new Date(ts).toLocaleString() },
    {
      title: "Leg 1",
      render: (_: unknown, e) => `${e.leg1?.exchange ?? ""} ${e.leg1?.success ? "✓" : "✗"} ${e.leg1?.price ?? ""} × ${e.leg1?.qty ?? ""}`,
    },
    {
      title: "Leg 2",
      render: (_: unknown, e) => `${e.leg2?.exchange ?? ""} ${e.leg2?.success ? "✓" : "✗"} ${e.leg2?.price ?? ""} × ${e.leg2?.qty ?? ""}`,
    },
    { title: "Spread %", dataIndex: "spreadPercent", render: (v: number | null) => formatPercent(v) },
    { title: "PnL", dataIndex: "pnl", render: (v: number | null) => (v ?? "—") },
    {
      title: "State",
      key: "state",
      render: (_: unknown, e) => (
        <Space size={2} wrap>
          {e.state ? <Tag color={STATE_COLORS[e.state] ?? "default"}>{e.state}</Tag> : null}
          {e.trigger ? <Tag>{e.trigger}</Tag> : null}
          {e.paper ? <Tag color="purple">paper</Tag> : null}
          {e.error ? (
            <Tooltip title={e.error.message}>
              <Tag color="red">{e.error.code}</Tag>
            </Tooltip>
          ) : null}
        </Space>
      ),
    },
  ];
  return (
    <Table<Execution>
      size="small"
      loading={isFetching}
      rowKey={(e) => String(e.executionId ?? e.id ?? `${e.ts}-${e.leg1?.orderId ?? ""}`)}
      columns={columns}
      dataSource={data ?? []}
      pagination={{ pageSize: 5, hideOnSinglePage: true }}
      locale={{ emptyText: "No executions yet" }}
    />
  );
}

export function ArbitragePage() {
  const { pairsQuery, prices } = usePairsWithPrices();
  const [updatePair] = useUpdatePairMutation();
  const [deletePair] = useDeletePairMutation();
  const [editing, setEditing] = useState<Pair | null>(null);
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [executing, setExecuting] = useState<Pair | null>(null);
  const { message } = App.useApp();

  const toggle = async (pair: PairRow, field: "enabled" | "autoExecute", value: boolean) => {
    const result = await updatePair({ ...pair, [field]: value });
    if ("error" in result && result.error) message.error(describeError(result.error));
  };

  const remove = async (pair: Pair) => {
    const result = await deletePair(pair.id);
    if ("error" in result && result.error) message.error(describeError(result.error));
    else message.success(`Pair ${pair.id} deleted`);
  };

  const quote = (leg: Pair["leg1"]) => prices?.quotes[legKey(leg)];

  const columns: ColumnsType<PairRow> = [
    {
      title: "Pair",
      key: "pair",
      width: 230,
      render: (_, p) => (
        <Space direction="vertical" size={0}>
          <Typography.Text strong data-testid={`pair-${p.id}-name`}>
            {p.id}
          </Typography.Text>
          <span>1: {legText(p.leg1)}</span>
          <span>2: {legText(p.leg2)}</span>
        </Space>
      ),
    },
    { title: "Leg 1", key: "leg1", width: 140, render: (_, p) => <QuoteCell quote={quote(p.leg1)} testId={`pair-${p.id}-leg1`} /> },
    { title: "Leg 2", key: "leg2", width: 140, render: (_, p) => <QuoteCell quote={quote(p.leg2)} testId={`pair-${p.id}-leg2`} /> },
    {
      title: <Tooltip title="Top-of-book spread for the configured (or best) direction. Decisions use the executable spread after fees.">Spread</Tooltip>,
      key: "spread",
      width: 120,
      render: (_, p) => {
        const view = bestSpread(p.direction, quote(p.leg1), quote(p.leg2));
        if (!view) return <Typography.Text type="secondary">—</Typography.Text>;
        const over = view.spreadPercent >= p.threshold;
        return (
          <Space direction="vertical" size={0}>
            <Typography.Text strong type={over ? "success" : undefined} data-testid={`pair-${p.id}-spread`}>
              {formatPercent(view.spreadPercent)}
            </Typography.Text>
            <Typography.Text type="secondary" style={{ fontSize: 11 }}>
              {view.buyLeg === "leg1" ? "buy 1 / sell 2" : "sell 1 / buy 2"}
            </Typography.Text>
          </Space>
        );
      },
    },
    {
      title: "Trend",
      key: "trend",
      width: 120,
      render: (_, p) => (
        <Sparkline points={prices?.spreadHistory[p.id] ?? []} threshold={p.threshold} testId={`pair-${p.id}-sparkline`} />
      ),
    },
    {
      title: "Threshold",
      dataIndex: "threshold",
      width: 90,
      render: (v: number, p) => (
        <Space direction="vertical" size={0}>
          <span>{v} %</span>
          {p.lastOpportunity ? <Tag color="gold">opp {formatPercent(p.lastOpportunity.spreadPercent)}</Tag> : null}
        </Space>
      ),
    },
    { title: "Qty", dataIndex: "qty", width: 80 },
    {
      title: "Enabled",
      key: "enabled",
      width: 80,
      render: (_, p) => (
        <Switch
          size="small"
          checked={p.enabled}
          onChange={(v) => void toggle(p, "enabled", v)}
          data-testid={`pair-${p.id}-enabled`}
          aria-label={`Enable monitoring of ${p.id}`}
        />
      ),
    },
    {
      title: "Auto",
      key: "auto",
      width: 70,
      render: (_, p) => (
        <Switch
          size="small"
          checked={Boolean(p.autoExecute)}
          onChange={(v) => void toggle(p, "autoExecute", v)}
          data-testid={`pair-${p.id}-auto`}
          aria-label={`Auto-execute ${p.id}`}
        />
      ),
    },
    {
      title: "Actions",
      key: "actions",
      width: 210,
      render: (_, p) => (
        <Space size={4}>
          <Button size="small" type="primary" danger onClick={() => setExecuting(p)} data-testid={`pair-${p.id}-execute`}>
            Execute
          </Button>
          <Button
            size="small"
            onClick={() => {
              setEditing(p);
              setDrawerOpen(true);
            }}
            data-testid={`pair-${p.id}-edit`}
          >
            Edit
          </Button>
          <Popconfirm title={`Delete pair ${p.id}?`} okText="Delete" okButtonProps={{ danger: true }} onConfirm={() => void remove(p)}>
            <Button size="small" data-testid={`pair-${p.id}-delete`}>
              Delete
            </Button>
          </Popconfirm>
        </Space>
      ),
    },
  ];

  return (
    <Card
      title="Arbitrage pairs"
      extra={
        <Button
          type="primary"
          icon={<PlusOutlined />}
          onClick={() => {
            setEditing(null);
            setDrawerOpen(true);
          }}
          data-testid="pair-new"
        >
          New pair
        </Button>
      }
    >
      {pairsQuery.error ? <ApiErrorAlert error={pairsQuery.error} what="Pairs" testId="pairs-error" /> : null}
      {prices?.snapshotError ? (
        <Alert
          style={{ marginBottom: 12 }}
          type="warning"
          showIcon
          data-testid="prices-snapshot-error"
          message={`Price snapshot unavailable (${prices.snapshotError.code}): ${prices.snapshotError.message}. Waiting for live updates.`}
        />
      ) : null}
      <Table<PairRow>
        data-testid="pairs-table"
        rowKey="id"
        size="middle"
        loading={pairsQuery.isLoading}
        columns={columns}
        dataSource={pairsQuery.data ?? []}
        pagination={false}
        scroll={{ x: 1200 }}
        onRow={(p) => ({ "data-testid": `pair-row-${p.id}` }) as HTMLAttributes<HTMLElement>}
        expandable={{ expandedRowRender: (p) => <ExecutionsList pairId={p.id} />, rowExpandable: () => true }}
        locale={{ emptyText: pairsQuery.error ? "Pairs could not be loaded" : "No pairs yet — add one with “New pair”" }}
      />
      <PairFormDrawer open={drawerOpen} pair={editing} onClose={() => setDrawerOpen(false)} />
      {executing ? (
        <ExecuteModal pair={executing} leg1={quote(executing.leg1)} leg2={quote(executing.leg2)} onClose={() => setExecuting(null)} />
      ) : null}
    </Card>
  );
}
