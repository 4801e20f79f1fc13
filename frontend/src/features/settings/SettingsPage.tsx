import { Alert, App, Button, Card, Col, Descriptions, Form, Input, InputNumber, Modal, Row, Space, Switch, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { describeError, fieldErrorsToFormFields, toApiError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { EXCHANGES } from "../arbitrage/types";
import { useGetExchangesQuery } from "../dashboard/dashboardApi";
import { VenueTag } from "../dashboard/ExchangeHealth";
import { OperatorTokens } from "./OperatorTokens";
import {
  humanizeKey,
  killSwitchEngaged,
  useGetApiSettingsQuery,
  useGetRiskLimitsQuery,
  useGetRiskStateQuery,
  usePutApiKeysMutation,
  usePutRiskLimitsMutation,
  useSetKillSwitchMutation,
  useTestApiKeysMutation,
  type ApiKeyInput,
  type RiskLimits,
} from "./settingsApi";

const NEEDS_PASSPHRASE = new Set(["okx", "bitget"]);

function ApiKeyCard({ exchange }: { exchange: string }) {
  const [form] = Form.useForm<ApiKeyInput>();
  const status = useGetApiSettingsQuery();
  const exchanges = useGetExchangesQuery();
  const [putKeys, putState] = usePutApiKeysMutation();
  const [testKeys, testState] = useTestApiKeysMutation();
  const [testResult, setTestResult] = useState<{ ok: boolean; text: string } | null>(null);
  const { message } = App.useApp();
  const connected = status.data?.[exchange]?.connected;
  const ex = exchanges.data?.find((e) => e.name === exchange);

  const onSave = async (values: ApiKeyInput) => {
    const body: ApiKeyInput = { apiKey: values.apiKey, secret: values.secret };
    if (NEEDS_PASSPHRASE.has(exchange)) body.passphrase = values.passphrase ?? "";
    const result = await putKeys({ [exchange]: body });
    // Write-only: the fields are cleared whatever the outcome, nothing lingers in the page.
    form.resetFields();
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      const nested = (err.fields?.[exchange] ?? err.fields) as Parameters<typeof fieldErrorsToFormFields>[0];
      form.setFields(fieldErrorsToFormFields(nested) as Parameters<typeof form.setFields>[0]);
      message.error(describeError(err));
      return;
    }
    message.success(`${exchange} keys saved (stored encrypted on the server)`);
  };

  const onTest = async () => {
    setTestResult(null);
    const result = await testKeys(exchange);
    if ("error" in result && result.error) {
      setTestResult({ ok: false, text: describeError(result.error) });
      return;
    }
    const data = result.data as Record<string, unknown>;
    const ok = typeof data.connected === "boolean" ? data.connected : Boolean((data[exchange] as { connected?: boolean } | undefined)?.connected);
    setTestResult({ ok, text: ok ? "Connected with these keys" : "Keys rejected or missing — running publicOnly" });
  };

  return (
    <Card
      size="small"
      data-testid={`api-keys-${exchange}`}
      title={
        <Space size={8} wrap>
          <span style={{ textTransform: "capitalize" }}>{exchange}</span>
          <VenueTag venue={ex?.venue} />
          {connected ? <Tag color="green">keys connected</Tag> : <Tag>no keys</Tag>}
          {ex ? (
            ex.publicOnly ? (
              <Tag color="purple" data-testid={`api-mode-${exchange}`}>publicOnly</Tag>
            ) : (
              <Tag color="blue" data-testid={`api-mode-${exchange}`}>live</Tag>
            )
          ) : null}
        </Space>
      }
    >
      <Form<ApiKeyInput> form={form} layout="vertical" onFinish={onSave} autoComplete="off">
        <Form.Item label="API key" name="apiKey" rules={[{ required: true, message: "Enter the API key" }]}>
          <Input.Password autoComplete="new-password" data-testid={`api-key-${exchange}`} placeholder={connected ? "•••• stored — enter to replace" : ""} />
        </Form.Item>
        <Form.Item label="Secret" name="secret" rules={[{ required: true, message: "Enter the secret" }]}>
          <Input.Password autoComplete="new-password" data-testid={`api-secret-${exchange}`} />
        </Form.Item>
        {NEEDS_PASSPHRASE.has(exchange) ? (
          <Form.Item label="Passphrase" name="passphrase" rules={[{ required: true, message: "Enter the passphrase" }]}>
            <Input.Password autoComplete="new-password" data-testid={`api-passphrase-${exchange}`} />
          </Form.Item>
        ) : null}
        <Space>
          <Button type="primary" htmlType="submit" loading={putState.isLoading} data-testid={`api-save-${exchange}`}>
            Save keys
          </Button>
          <Button onClick={() => void onTest()} loading={testState.isLoading} data-testid={`api-test-${exchange}`}>
            Test
          </Button>
        </Space>
      </Form>
      {testResult ? (
        <Alert style={{ marginTop: 8 }} showIcon type={testResult.ok ? "success" : "warning"} message={testResult.text} data-testid={`api-test-result-${exchange}`} />
      ) : null}
    </Card>
  );
}

function RiskLimitsForm() {
  const { data, error, isLoading } = useGetRiskLimitsQuery();
  const [putLimits, { isLoading: saving }] = usePutRiskLimitsMutation();
  const [form] = Form.useForm<RiskLimits>();
  const { message } = App.useApp();

  const limits = data?.global;

  useEffect(() => {
    if (limits) form.setFieldsValue(limits);
  }, [limits, form]);

  const onFinish = async (values: RiskLimits) => {
    // Only what the operator changed: every field sent is audited server-side.
    const changed = Object.fromEntries(Object.entries(values).filter(([k, v]) => limits?.[k] !== v));
    if (Object.keys(changed).length === 0) {
      message.info("No limit changed");
      return;
    }
    const result = await putLimits(changed);
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      form.setFields(fieldErrorsToFormFields(err.fields) as Parameters<typeof form.setFields>[0]);
      message.error(describeError(err));
      return;
    }
    message.success("Risk limits saved");
  };

  return (
    <Card size="small" title="Risk limits" loading={isLoading}>
      {error ? <ApiErrorAlert error={error} what="Risk limits" testId="risk-limits-error" /> : null}
      {data && limits ? (
        <Form<RiskLimits> form={form} layout="vertical" onFinish={onFinish}>
          <Typography.Paragraph type="secondary" data-testid="risk-limits-meta">
            Global limits{data.updatedBy ? `, last changed by ${data.updatedBy}` : ""}
            {data.updatedAt ? ` at ${new Date(data.updatedAt).toLocaleString()}` : ""}.
            {data.pairs.length ? ` ${data.pairs.length} pair(s) override some of them (admin).` : ""}
          </Typography.Paragraph>
          <Row gutter={12}>
            {Object.entries(limits).map(([key, value]) => (
              <Col span={8} key={key}>
                {typeof value === "boolean" ? (
                  <Form.Item label={humanizeKey(key)} name={key} valuePropName="checked">
                    <Switch data-testid={`risk-${key}`} />
                  </Form.Item>
                ) : typeof value === "number" || value === null || /^-?\d+(\.\d+)?$/.test(String(value)) ? (
                  <Form.Item label={humanizeKey(key)} name={key}>
                    <InputNumber data-testid={`risk-${key}`} style={{ width: "100%" }} stringMode={typeof value === "string"} />
                  </Form.Item>
                ) : (
                  <Form.Item label={humanizeKey(key)} name={key}>
                    <Input data-testid={`risk-${key}`} />
                  </Form.Item>
                )}
              </Col>
            ))}
          </Row>
          <Button type="primary" htmlType="submit" loading={saving} data-testid="risk-limits-save">
            Save limits
          </Button>
        </Form>
      ) : null}
    </Card>
  );
}

function fmt(v: unknown): string {
  return v === null || v === undefined ? "—" : String(v);
}

interface RiskSummary {
  state: string;
  reason: string;
  notActive: string[];
  openBreakers: number;
  today: { notional?: number; realisedPnl?: number; orders?: number; rejections?: number; maxDailyNotional?: number | null; maxDailyLoss?: number | null };
}

/** The server's nested risk state (global state, paused scopes, breakers, today's usage), when it sends one. */
function riskSummary(data: Record<string, unknown> | undefined): RiskSummary | null {
  const global = data?.global as { state?: string; reason?: string } | undefined;
  if (!global || typeof global !== "object" || typeof global.state !== "string") return null;
  const states = Array.isArray(data?.states) ? (data.states as Array<{ scope: string; id: string | null; state: string; reason?: string }>) : [];
  const today = (data?.today ?? {}) as RiskSummary["today"] & { limits?: { maxDailyNotional?: number | null; maxDailyLoss?: number | null } };
  return {
    state: global.state,
    reason: global.reason ?? "",
    notActive: states.map((st) => `${st.scope}${st.id ? ` ${st.id}` : ""}: ${st.state}${st.reason ? ` (${st.reason})` : ""}`),
    openBreakers: Array.isArray(data?.breakers) ? data.breakers.length : 0,
    today: { ...today, maxDailyNotional: today.limits?.maxDailyNotional, maxDailyLoss: today.limits?.maxDailyLoss },
  };
}

function KillSwitch() {
  const { data, error } = useGetRiskStateQuery(undefined, { pollingInterval: 5_000 });
  const [setKill, { isLoading }] = useSetKillSwitchMutation();
  const [confirming, setConfirming] = useState<boolean | null>(null);
  const { message } = App.useApp();
  const engaged = killSwitchEngaged(data);

  const apply = async (value: boolean) => {
    const result = await setKill(value);
    setConfirming(null);
    if ("error" in result && result.error) message.error(describeError(result.error));
    else message.warning(value ? "Kill switch ENGAGED: no new orders will be sent" : "Kill switch released");
  };

  const details = Object.entries(data ?? {}).filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v));
  const summary = riskSummary(data);

  return (
    <Card size="small" title="Risk state & kill switch" style={engaged ? { borderColor: "#cf1322", borderWidth: 2 } : undefined}>
      {error ? <ApiErrorAlert error={error} what="Risk state" testId="risk-state-error" /> : null}
      {engaged ? (
        <Alert type="error" showIcon style={{ marginBottom: 12 }} data-testid="kill-switch-engaged" message="Kill switch engaged — all trading is halted." />
      ) : null}
      <Space align="center" style={{ marginBottom: 12 }}>
        <Typography.Text strong>Global kill switch</Typography.Text>
        <Button
          danger={!engaged}
          type={engaged ? "default" : "primary"}
          loading={isLoading}
          disabled={Boolean(error)}
          onClick={() => setConfirming(!engaged)}
          data-testid="kill-switch"
        >
          {engaged ? "Release kill switch" : "Engage kill switch"}
        </Button>
      </Space>
      {summary ? (
        <Descriptions size="small" column={2} bordered style={{ marginBottom: details.length ? 12 : 0 }} data-testid="risk-summary">
          <Descriptions.Item label="Trading state">
            <Tag color={summary.state === "active" ? "green" : summary.state === "reducing" ? "orange" : "red"} data-testid="risk-global-state">
              {summary.state}
            </Tag>
            {summary.reason}
          </Descriptions.Item>
          <Descriptions.Item label="Paused or halted">
            {summary.notActive.length ? summary.notActive.join("; ") : "nothing"}
            {summary.openBreakers ? ` · ${summary.openBreakers} breaker(s) open` : ""}
          </Descriptions.Item>
          <Descriptions.Item label="Notional today">
            {fmt(summary.today.notional)}
            {summary.today.maxDailyNotional != null ? ` of ${fmt(summary.today.maxDailyNotional)} USDT` : " USDT"}
          </Descriptions.Item>
          <Descriptions.Item label="Realised PnL today">
            {fmt(summary.today.realisedPnl)}
            {summary.today.maxDailyLoss != null ? ` (loss limit ${fmt(summary.today.maxDailyLoss)})` : ""}
          </Descriptions.Item>
          <Descriptions.Item label="Orders today">{fmt(summary.today.orders)}</Descriptions.Item>
          <Descriptions.Item label="Rejections today">{fmt(summary.today.rejections)}</Descriptions.Item>
        </Descriptions>
      ) : null}
      {details.length ? (
        <Descriptions size="small" column={2} bordered>
          {details.map(([k, v]) => (
            <Descriptions.Item key={k} label={humanizeKey(k)}>
              {v === null ? "—" : String(v)}
            </Descriptions.Item>
          ))}
        </Descriptions>
      ) : null}
      <Modal
        open={confirming !== null}
        title={confirming ? "Engage the kill switch?" : "Release the kill switch?"}
        okText={confirming ? "Engage — halt trading" : "Release — resume trading"}
        okButtonProps={{ danger: Boolean(confirming), "data-testid": "kill-switch-confirm" }}
        onOk={() => void apply(Boolean(confirming))}
        onCancel={() => setConfirming(null)}
        confirmLoading={isLoading}
      >
        {confirming
          ? "Every pair stops executing and no TWAP slice is sent until the switch is released."
          : "Pairs with auto-execution and running TWAP plans may start sending orders again."}
      </Modal>
    </Card>
  );
}

export function SettingsPage() {
  const status = useGetApiSettingsQuery();
  return (
    <Space direction="vertical" size="middle" style={{ width: "100%" }}>
      <KillSwitch />
      <Card size="small" title="Exchange API keys">
        <Typography.Paragraph type="secondary">
          Keys are write-only: they are sent once over this session, stored encrypted on the server and never shown again.
          Without keys an exchange runs <b>publicOnly</b> (live market data, paper execution).
        </Typography.Paragraph>
        {status.error ? <ApiErrorAlert error={status.error} what="API key settings" testId="api-settings-error" /> : null}
        <Row gutter={[12, 12]}>
          {EXCHANGES.map((e) => (
            <Col key={e} xs={24} lg={12}>
              <ApiKeyCard exchange={e} />
            </Col>
          ))}
        </Row>
      </Card>
      <RiskLimitsForm />
      <OperatorTokens />
    </Space>
  );
}
