import { Alert, App, Button, Card, Col, Descriptions, Form, Input, InputNumber, Modal, Row, Space, Switch, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { describeError, fieldErrorsToFormFields, toApiError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { EXCHANGES } from "../arbitrage/types";
import { useGetExchangesQuery } from "../dashboard/dashboardApi";
import { VenueTag } from "../dashboard/ExchangeHealth";
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

  useEffect(() => {
    if (data) form.setFieldsValue(data);
  }, [data, form]);

  const onFinish = async (values: RiskLimits) => {
    const result = await putLimits({ ...data, ...values });
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
      {data ? (
        <Form<RiskLimits> form={form} layout="vertical" onFinish={onFinish}>
          <Row gutter={12}>
            {Object.entries(data).map(([key, value]) => (
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
    </Space>
  );
}
