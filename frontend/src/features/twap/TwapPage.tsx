import { Alert, App, Button, Card, Col, Divider, Form, Input, InputNumber, Popconfirm, Progress, Row, Select, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState, type HTMLAttributes } from "react";
import { describeError, fieldErrorsToFormFields, toApiError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { EXCHANGES, MARKET_TYPES } from "../arbitrage/types";
import { PlanSlices } from "./PlanSlices";
import {
  TERMINAL_STATES,
  useControlPlanMutation,
  useCreatePlanMutation,
  useDeletePlanMutation,
  useGetPlansQuery,
  type TwapAction,
  type TwapPlan,
  type TwapPlanInput,
} from "./twapApi";

const STATE_COLORS: Record<string, string> = {
  pending: "default",
  created: "default",
  scheduled: "default",
  running: "processing",
  paused: "warning",
  completed: "success",
  complete: "success",
  done: "success",
  cancelled: "default",
  canceled: "default",
  failed: "error",
};

interface PlanFormValues {
  name: string;
  totalQty: number;
  sliceQty: number;
  intervalSec: number;
  legs: TwapPlanInput["legs"];
}

const INITIAL: PlanFormValues = {
  name: "",
  totalQty: 0.01,
  sliceQty: 0.001,
  intervalSec: 30,
  legs: [
    // The desk's usual hedge: Bybit perpetual against Binance spot (the server defaults to spot).
    { exchange: "bybit", marketType: "linear", symbol: "BTCUSDT", side: "buy", type: "market" },
    { exchange: "binance", marketType: "spot", symbol: "BTCUSDT", side: "sell", type: "market" },
  ],
};

function PlanForm() {
  const [form] = Form.useForm<PlanFormValues>();
  const [createPlan, { isLoading }] = useCreatePlanMutation();
  const [error, setError] = useState<unknown>(null);
  const { message } = App.useApp();

  const onFinish = async (values: PlanFormValues) => {
    setError(null);
    const body: TwapPlanInput = {
      name: values.name,
      totalQty: values.totalQty,
      sliceQty: values.sliceQty,
      intervalMs: Math.round(values.intervalSec * 1000),
      legs: values.legs,
    };
    const result = await createPlan(body);
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      setError(err);
      const fields = fieldErrorsToFormFields(err.fields).map((f) =>
        f.name[0] === "intervalMs" ? { ...f, name: ["intervalSec", ...f.name.slice(1)] } : f,
      );
      form.setFields(fields as Parameters<typeof form.setFields>[0]);
      return;
    }
    message.success(`Plan created: ${result.data?.planId ?? values.name}`);
    form.resetFields();
  };

  return (
    <Card title="New TWAP plan" size="small">
      {error ? <Alert data-testid="twap-form-error" type="error" showIcon style={{ marginBottom: 12 }} message={describeError(error)} /> : null}
      <Form<PlanFormValues> form={form} layout="vertical" initialValues={INITIAL} onFinish={onFinish}>
        <Row gutter={8}>
          <Col span={6}>
            <Form.Item label="Name" name="name" rules={[{ required: true, message: "Name the plan" }]}>
              <Input data-testid="twap-name" placeholder="BTC_TWAP" />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item label="Total qty (base)" name="totalQty" rules={[{ required: true, message: "Required" }]}>
              <InputNumber data-testid="twap-total-qty" min={0} step={0.001} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item
              label="Slice qty"
              name="sliceQty"
              dependencies={["totalQty"]}
              rules={[
                { required: true, message: "Required" },
                ({ getFieldValue }) => ({
                  validator: (_, v: number) =>
                    v > 0 && v <= Number(getFieldValue("totalQty") ?? 0)
                      ? Promise.resolve()
                      : Promise.reject(new Error("Must be > 0 and ≤ total qty")),
                }),
              ]}
            >
              <InputNumber data-testid="twap-slice-qty" min={0} step={0.001} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item label="Interval (s)" name="intervalSec" rules={[{ required: true, message: "Required" }]}>
              <InputNumber data-testid="twap-interval" min={1} step={1} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
        </Row>
        {[0, 1].map((i) => (
          <div key={i}>
            <Divider orientation="left" plain style={{ margin: "4px 0 8px" }}>
              Leg {i + 1}
            </Divider>
            <Row gutter={8}>
              <Col span={5}>
                <Form.Item label="Exchange" name={["legs", i, "exchange"]} rules={[{ required: true }]}>
                  <Select data-testid={`twap-leg${i + 1}-exchange`} options={EXCHANGES.map((e) => ({ value: e, label: e }))} />
                </Form.Item>
              </Col>
              <Col span={4}>
                <Form.Item label="Market" name={["legs", i, "marketType"]} rules={[{ required: true, message: "Pick a market type" }]}>
                  <Select data-testid={`twap-leg${i + 1}-market`} options={MARKET_TYPES.map((t) => ({ value: t, label: t }))} />
                </Form.Item>
              </Col>
              <Col span={5}>
                <Form.Item
                  label="Symbol"
                  name={["legs", i, "symbol"]}
                  normalize={(v: string) => (v ?? "").toUpperCase().trim()}
                  rules={[{ required: true, message: "Required" }]}
                >
                  <Input data-testid={`twap-leg${i + 1}-symbol`} />
                </Form.Item>
              </Col>
              <Col span={5}>
                <Form.Item label="Side" name={["legs", i, "side"]} rules={[{ required: true }]}>
                  <Select data-testid={`twap-leg${i + 1}-side`} options={[{ value: "buy" }, { value: "sell" }]} />
                </Form.Item>
              </Col>
              <Col span={5}>
                <Form.Item label="Order type" name={["legs", i, "type"]} rules={[{ required: true }]}>
                  <Select data-testid={`twap-leg${i + 1}-type`} options={[{ value: "market" }, { value: "limit" }]} />
                </Form.Item>
              </Col>
            </Row>
          </div>
        ))}
        <Button type="primary" htmlType="submit" loading={isLoading} data-testid="twap-create">
          Create plan
        </Button>
      </Form>
    </Card>
  );
}

export function TwapPage() {
  const { data, error, isLoading } = useGetPlansQuery();
  const [control] = useControlPlanMutation();
  const [deletePlan] = useDeletePlanMutation();
  const [expanded, setExpanded] = useState<string[]>([]);
  const { message } = App.useApp();
  const toggleSlices = (planId: string) =>
    setExpanded((keys) => (keys.includes(planId) ? keys.filter((k) => k !== planId) : [...keys, planId]));

  const act = async (plan: TwapPlan, action: TwapAction) => {
    const result = await control({ planId: plan.planId, action });
    if ("error" in result && result.error) message.error(describeError(result.error));
    else message.success(`${plan.name}: ${action} requested`);
  };

  const remove = async (plan: TwapPlan) => {
    const result = await deletePlan(plan.planId);
    if ("error" in result && result.error) message.error(describeError(result.error));
  };

  const columns: ColumnsType<TwapPlan> = [
    {
      title: "Plan",
      key: "plan",
      render: (_, p) => (
        <Space direction="vertical" size={0}>
          <Typography.Text strong>{p.name}</Typography.Text>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {p.planId}
          </Typography.Text>
        </Space>
      ),
    },
    {
      title: "Legs",
      key: "legs",
      render: (_, p) => (
        <Space direction="vertical" size={0} style={{ fontSize: 12 }}>
          {p.legs.map((l, i) => (
            <span key={i}>
              <Tag color={l.side === "buy" ? "green" : "red"}>{l.side}</Tag>
              {l.exchange} {l.symbol} {l.marketType ?? ""} ({l.type})
            </span>
          ))}
        </Space>
      ),
    },
    {
      title: "Size",
      key: "size",
      render: (_, p) => (
        <span style={{ fontSize: 12 }}>
          {p.totalQty} in {p.sliceQty} every {p.intervalMs / 1000}s
        </span>
      ),
    },
    {
      title: "Progress",
      key: "progress",
      width: 220,
      render: (_, p) => {
        const pct = p.totalQty > 0 ? Math.min(100, (p.progress.executed / p.totalQty) * 100) : 0;
        return (
          <div data-testid={`twap-${p.planId}-progress`}>
            <Progress
              percent={Number(pct.toFixed(1))}
              size="small"
              status={p.state === "failed" ? "exception" : p.state === "running" ? "active" : undefined}
            />
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {p.progress.executed} / {p.totalQty} · slices {p.progress.slicesDone}/{p.progress.slicesTotal}
            </Typography.Text>
          </div>
        );
      },
    },
    {
      title: "State",
      dataIndex: "state",
      render: (s: string, p) => (
        <Space direction="vertical" size={0}>
          <Tag color={STATE_COLORS[s] ?? "default"} data-testid={`twap-${p.planId}-state`}>
            {s}
          </Tag>
          {p.stateReason && s !== "running" ? (
            <Typography.Text type={s === "failed" ? "danger" : "secondary"} style={{ fontSize: 12, maxWidth: 220 }} data-testid={`twap-${p.planId}-reason`}>
              {p.stateReason}
            </Typography.Text>
          ) : null}
        </Space>
      ),
    },
    {
      title: "Last slice",
      dataIndex: "lastExecutionTs",
      render: (ts: number | null) => (ts ? new Date(ts).toLocaleTimeString() : "—"),
    },
    {
      title: "Controls",
      key: "controls",
      render: (_, p) => {
        const terminal = TERMINAL_STATES.has(p.state);
        const running = p.state === "running";
        const paused = p.state === "paused";
        return (
          <Space size={4} wrap>
            <Button
              size="small"
              type="link"
              aria-expanded={expanded.includes(p.planId)}
              aria-controls={`twap-${p.planId}-slices`}
              onClick={() => toggleSlices(p.planId)}
              data-testid={`twap-${p.planId}-slices-toggle`}
            >
              {expanded.includes(p.planId) ? "Hide slices" : "Slices"}
            </Button>
            <Button size="small" type="primary" disabled={terminal || running || paused} onClick={() => void act(p, "start")} data-testid={`twap-${p.planId}-start`}>
              Start
            </Button>
            <Button size="small" disabled={!running} onClick={() => void act(p, "pause")} data-testid={`twap-${p.planId}-pause`}>
              Pause
            </Button>
            <Button size="small" disabled={!paused} onClick={() => void act(p, "resume")} data-testid={`twap-${p.planId}-resume`}>
              Resume
            </Button>
            <Popconfirm title={`Cancel ${p.name}? Remaining slices will not be sent.`} okText="Cancel plan" okButtonProps={{ danger: true }} onConfirm={() => void act(p, "cancel")} disabled={terminal}>
              <Button size="small" danger disabled={terminal} data-testid={`twap-${p.planId}-cancel`}>
                Cancel
              </Button>
            </Popconfirm>
            {terminal ? (
              <Popconfirm title={`Delete ${p.name}?`} onConfirm={() => void remove(p)}>
                <Button size="small" data-testid={`twap-${p.planId}-delete`}>
                  Delete
                </Button>
              </Popconfirm>
            ) : null}
          </Space>
        );
      },
    },
  ];

  return (
    <Space direction="vertical" size="middle" style={{ width: "100%" }}>
      <PlanForm />
      <Card title="TWAP plans" size="small">
        {error ? <ApiErrorAlert error={error} what="TWAP plans" testId="twap-error" /> : null}
        <Table<TwapPlan>
          rowKey="planId"
          size="middle"
          loading={isLoading}
          columns={columns}
          dataSource={data ?? []}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          onRow={(p) => ({ "data-testid": `twap-row-${p.planId}` }) as HTMLAttributes<HTMLElement>}
          expandable={{
            expandedRowKeys: expanded,
            showExpandColumn: false,
            expandedRowRender: (p) => <PlanSlices planId={p.planId} running={p.state === "running"} />,
          }}
          locale={{ emptyText: error ? "Plans could not be loaded" : "No plans yet" }}
        />
      </Card>
    </Space>
  );
}
