/** Create or edit a pair; server-side field errors (VALIDATION_ERROR `fields`) land on the inputs. */
import { Alert, App, Button, Col, Divider, Drawer, Form, Input, InputNumber, Row, Select, Space, Switch } from "antd";
import { useEffect, useState } from "react";
import { describeError, fieldErrorsToFormFields, toApiError } from "../../api/errors";
import { useCreatePairMutation, useUpdatePairMutation } from "./arbitrageApi";
import { DIRECTIONS, EXCHANGES, MARKET_TYPES, type Pair, type PairInput } from "./types";

interface Props {
  open: boolean;
  pair: Pair | null;
  onClose: () => void;
}

const DIRECTION_LABELS: Record<string, string> = {
  auto: "Auto (whichever side is profitable)",
  leg1_buy_leg2_sell: "Buy leg 1, sell leg 2",
  leg1_sell_leg2_buy: "Sell leg 1, buy leg 2",
};

const EMPTY: PairInput = {
  leg1: { exchange: "bybit", symbol: "BTCUSDT", type: "linear" },
  leg2: { exchange: "binance", symbol: "BTCUSDT", type: "spot" },
  threshold: 0.1,
  qty: 0.001,
  totalAmount: 200,
  direction: "auto",
  enabled: true,
  autoExecute: false,
};

function LegFields({ leg, label }: { leg: "leg1" | "leg2"; label: string }) {
  return (
    <>
      <Divider orientation="left" plain style={{ margin: "8px 0" }}>
        {label}
      </Divider>
      <Row gutter={8}>
        <Col span={8}>
          <Form.Item label="Exchange" name={[leg, "exchange"]} rules={[{ required: true, message: "Pick an exchange" }]}>
            <Select
              data-testid={`pair-${leg}-exchange`}
              options={EXCHANGES.map((e) => ({ value: e, label: e }))}
            />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item label="Market" name={[leg, "type"]} rules={[{ required: true, message: "Pick a market type" }]}>
            <Select data-testid={`pair-${leg}-type`} options={MARKET_TYPES.map((t) => ({ value: t, label: t }))} />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item
            label="Symbol"
            name={[leg, "symbol"]}
            normalize={(v: string) => (v ?? "").toUpperCase().trim()}
            rules={[{ required: true, message: "Enter a symbol, e.g. BTCUSDT" }]}
          >
            <Input data-testid={`pair-${leg}-symbol`} placeholder="BTCUSDT" />
          </Form.Item>
        </Col>
      </Row>
    </>
  );
}

export function PairFormDrawer({ open, pair, onClose }: Props) {
  const [form] = Form.useForm<PairInput>();
  const [createPair, createState] = useCreatePairMutation();
  const [updatePair, updateState] = useUpdatePairMutation();
  const [formError, setFormError] = useState<unknown>(null);
  const { message } = App.useApp();

  useEffect(() => {
    if (!open) return;
    setFormError(null);
    form.resetFields();
    form.setFieldsValue(pair ? { ...pair, autoExecute: pair.autoExecute ?? false } : EMPTY);
  }, [open, pair, form]);

  const onFinish = async (values: PairInput) => {
    setFormError(null);
    const result = pair ? await updatePair({ ...pair, ...values, id: pair.id }) : await createPair(values);
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      setFormError(err);
      form.setFields(fieldErrorsToFormFields(err.fields) as Parameters<typeof form.setFields>[0]);
      return;
    }
    message.success(pair ? `Pair ${pair.id} saved` : "Pair created");
    onClose();
  };

  return (
    <Drawer
      title={pair ? `Edit pair ${pair.id}` : "New pair"}
      open={open}
      onClose={onClose}
      width={560}
      destroyOnClose
      data-testid="pair-drawer"
      extra={
        <Space>
          <Button onClick={onClose}>Cancel</Button>
          <Button
            type="primary"
            onClick={() => form.submit()}
            loading={createState.isLoading || updateState.isLoading}
            data-testid="pair-save"
          >
            Save
          </Button>
        </Space>
      }
    >
      {formError ? (
        <Alert
          data-testid="pair-form-error"
          type="error"
          showIcon
          style={{ marginBottom: 12 }}
          message={describeError(formError)}
        />
      ) : null}
      <Form<PairInput> form={form} layout="vertical" onFinish={onFinish} initialValues={EMPTY}>
        <LegFields leg="leg1" label="Leg 1" />
        <LegFields leg="leg2" label="Leg 2" />
        <Divider orientation="left" plain style={{ margin: "8px 0" }}>
          Trigger and size
        </Divider>
        <Row gutter={8}>
          <Col span={8}>
            <Form.Item label="Threshold (%)" name="threshold" rules={[{ required: true, message: "Required" }]}>
              <InputNumber data-testid="pair-threshold" min={0} step={0.01} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
          <Col span={8}>
            <Form.Item label="Qty per leg (base)" name="qty" rules={[{ required: true, message: "Required" }]}>
              <InputNumber data-testid="pair-qty" min={0} step={0.001} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
          <Col span={8}>
            <Form.Item label="Total amount (USDT)" name="totalAmount" rules={[{ required: true, message: "Required" }]}>
              <InputNumber data-testid="pair-total-amount" min={0} step={10} style={{ width: "100%" }} />
            </Form.Item>
          </Col>
        </Row>
        <Form.Item label="Direction" name="direction">
          <Select data-testid="pair-direction" options={DIRECTIONS.map((d) => ({ value: d, label: DIRECTION_LABELS[d] }))} />
        </Form.Item>
        <Row gutter={8}>
          <Col span={12}>
            <Form.Item label="Enabled (monitoring)" name="enabled" valuePropName="checked">
              <Switch data-testid="pair-enabled" />
            </Form.Item>
          </Col>
          <Col span={12}>
            <Form.Item
              label="Auto-execute"
              name="autoExecute"
              valuePropName="checked"
              tooltip="Execute automatically when the executable spread clears the threshold and risk checks pass."
            >
              <Switch data-testid="pair-auto-execute" />
            </Form.Item>
          </Col>
        </Row>
        {/* In the form too, so Enter and the tab order end on a real submit button. */}
        <Button type="primary" htmlType="submit" loading={createState.isLoading || updateState.isLoading} data-testid="pair-submit">
          {pair ? "Save pair" : "Create pair"}
        </Button>
      </Form>
    </Drawer>
  );
}
