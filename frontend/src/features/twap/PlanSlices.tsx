/** A plan's per-slice history: schedule, what each leg filled and at what average price, errors. */
import { Space, Table, Tag, Tooltip, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import type { HTMLAttributes } from "react";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { legFill, sliceErrors, useGetPlanDetailQuery, type TwapSlice } from "./twapApi";

const SLICE_COLORS: Record<string, string> = {
  pending: "default",
  dispatched: "blue",
  running: "processing",
  done: "success",
  cancelled: "default",
};

function time(ts: number | null): string {
  return ts ? new Date(ts).toLocaleTimeString() : "—";
}

function LegCell({ slice, leg }: { slice: TwapSlice; leg: number }) {
  const f = legFill(slice, leg);
  if (f.orders === 0) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <span data-testid={`slice-${slice.index}-leg${leg}`}>
      {f.filledQty} @ {f.avgPrice === null ? "—" : Number(f.avgPrice.toPrecision(10))}
      {f.status ? <Tag style={{ marginInlineStart: 6 }}>{f.status}</Tag> : null}
      {f.paper ? <Tag color="purple">paper</Tag> : null}
      {f.orders > 1 ? <Typography.Text type="secondary"> ({f.orders} orders)</Typography.Text> : null}
    </span>
  );
}

export function PlanSlices({ planId, running }: { planId: string; running: boolean }) {
  // twap_progress invalidates this on every finished slice; the poll covers a missed event while running.
  const { data, error, isLoading } = useGetPlanDetailQuery(planId, { pollingInterval: running ? 10_000 : 0 });

  const columns: ColumnsType<TwapSlice> = [
    {
      title: "#",
      dataIndex: "index",
      key: "index",
      width: 70,
      render: (i: number, s) => (
        <Space size={4}>
          {i}
          {s.catchUp ? <Tooltip title="Added after the schedule to bring a lagging leg level"><Tag color="gold">catch-up</Tag></Tooltip> : null}
        </Space>
      ),
    },
    { title: "Qty", dataIndex: "qty", key: "qty" },
    {
      title: "State",
      dataIndex: "state",
      key: "state",
      render: (st: string, s) => (
        <Tag color={SLICE_COLORS[st] ?? "default"} data-testid={`slice-${s.index}-state`}>
          {st}
        </Tag>
      ),
    },
    { title: "Due", dataIndex: "dueTs", key: "due", render: time },
    { title: "Finished", dataIndex: "finishedTs", key: "finished", render: time },
    {
      title: "Tries",
      key: "tries",
      render: (_, s) => (
        <Tooltip title="times a worker took it · times it was put back before sending">
          <span>
            {s.attempts}
            {s.deferrals ? ` · ${s.deferrals} deferred` : ""}
          </span>
        </Tooltip>
      ),
    },
    { title: "Leg 1 filled @ avg", key: "leg1", render: (_, s) => <LegCell slice={s} leg={1} /> },
    { title: "Leg 2 filled @ avg", key: "leg2", render: (_, s) => <LegCell slice={s} leg={2} /> },
    {
      title: "Notes / errors",
      key: "errors",
      render: (_, s) => {
        const errors = sliceErrors(s);
        return errors.length ? (
          <Typography.Text
            type={s.orders.some((o) => o.error) ? "danger" : "secondary"}
            style={{ fontSize: 12, display: "block", maxWidth: 300, whiteSpace: "normal", wordBreak: "break-word" }}
            data-testid={`slice-${s.index}-error`}
          >
            {errors.join("; ")}
          </Typography.Text>
        ) : null;
      },
    },
  ];

  return (
    <div data-testid={`twap-${planId}-slices`}>
      {error ? <ApiErrorAlert error={error} what="Slice history" testId={`twap-${planId}-slices-error`} /> : null}
      {!error ? (
        <Table<TwapSlice>
          rowKey="index"
          size="small"
          loading={isLoading}
          columns={columns}
          dataSource={data?.slices ?? []}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          scroll={{ x: "max-content" }}
          onRow={(s) => ({ "data-testid": `slice-row-${s.index}` }) as HTMLAttributes<HTMLElement>}
          locale={{ emptyText: "No slices scheduled yet" }}
        />
      ) : null}
    </div>
  );
}
