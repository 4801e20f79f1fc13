/** Settings card: named operator tokens for scripts — list, create (key shown once), revoke. */
import { Alert, App, Button, Card, Form, Input, Modal, Popconfirm, Space, Table, Tag, Typography } from "antd";
import type { ButtonProps } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useRef, useState, type HTMLAttributes } from "react";
import { describeError, fieldErrorsToFormFields, toApiError } from "../../api/errors";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { useCreateTokenMutation, useGetTokensQuery, useRevokeTokenMutation, type OperatorToken } from "./tokensApi";

function when(ts: number | null | undefined): string {
  return ts ? new Date(ts).toLocaleString() : "never";
}

/** The one-time key: read-only field, Copy button, and the warning. Nothing here outlives the modal. */
function NewKeyModal({ name, tokenKey, onClose }: { name: string; tokenKey: string | undefined; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  const field = useRef<HTMLInputElement | null>(null);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(tokenKey ?? "");
      setCopied(true);
    } catch {
      // No clipboard permission (plain http, old browser): select it so Ctrl+C works.
      field.current?.select();
    }
  };

  const close = () => {
    setCopied(false);
    onClose();
  };

  return (
    <Modal
      open={tokenKey !== undefined}
      title={`Token "${name}" created`}
      onCancel={close}
      maskClosable={false}
      destroyOnHidden
      footer={
        <Button type="primary" onClick={close} data-testid="token-key-done">
          I have copied it — close
        </Button>
      }
    >
      <Alert
        type="warning"
        showIcon
        style={{ marginBottom: 12 }}
        data-testid="token-key-warning"
        message="Copy this key now: you will not see it again."
        description="The server keeps only a digest. If you lose the key, revoke the token and create a new one."
      />
      <label htmlFor="token-key-field">
        <Typography.Text strong>Bearer key</Typography.Text>
      </label>
      <Space.Compact style={{ width: "100%", marginTop: 4 }}>
        <Input
          id="token-key-field"
          readOnly
          value={tokenKey ?? ""}
          data-testid="token-key"
          autoComplete="off"
          spellCheck={false}
          ref={(el) => {
            field.current = el?.input ?? null;
          }}
          onFocus={(e) => e.currentTarget.select()}
          style={{ fontFamily: "monospace" }}
        />
        <Button onClick={() => void copy()} data-testid="token-key-copy">
          {copied ? "Copied" : "Copy"}
        </Button>
      </Space.Compact>
      <Typography.Paragraph type="secondary" style={{ marginTop: 8, marginBottom: 0, fontSize: 12 }}>
        Scripts send it as <code>Authorization: Bearer &lt;key&gt;</code>.
      </Typography.Paragraph>
    </Modal>
  );
}

export function OperatorTokens() {
  const { data, error, isLoading } = useGetTokensQuery();
  const [create, created] = useCreateTokenMutation();
  const [revoke, revoking] = useRevokeTokenMutation();
  const [form] = Form.useForm<{ name: string }>();
  const { message } = App.useApp();

  const onCreate = async ({ name }: { name: string }) => {
    const result = await create({ name: name.trim() });
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      form.setFields(fieldErrorsToFormFields(err.fields) as Parameters<typeof form.setFields>[0]);
      message.error(describeError(err));
      created.reset();
      return;
    }
    form.resetFields();
  };

  const onRevoke = async (token: OperatorToken) => {
    const result = await revoke(token.id);
    if ("error" in result && result.error) message.error(describeError(result.error));
    else message.success(`Token "${token.name}" revoked`);
  };

  const columns: ColumnsType<OperatorToken> = [
    { title: "Name", dataIndex: "name", key: "name", render: (n: string) => <Typography.Text strong>{n}</Typography.Text> },
    { title: "Key", dataIndex: "prefix", key: "prefix", render: (p: string) => <Typography.Text code>{p}…</Typography.Text> },
    { title: "Created", dataIndex: "createdAt", key: "created", render: when },
    { title: "Last used", dataIndex: "lastUsedAt", key: "used", render: when },
    {
      title: "Status",
      key: "status",
      render: (_, t) => (t.revoked ? <Tag data-testid={`token-${t.id}-status`}>revoked</Tag> : <Tag color="green" data-testid={`token-${t.id}-status`}>active</Tag>),
    },
    {
      title: "",
      key: "revoke",
      align: "right",
      render: (_, t) =>
        t.revoked ? null : (
          <Popconfirm
            title={`Revoke "${t.name}"?`}
            description="Scripts using this key stop working at once."
            okText="Revoke"
            okButtonProps={{ danger: true, "data-testid": `token-${t.id}-revoke-confirm` } as ButtonProps}
            onConfirm={() => void onRevoke(t)}
          >
            <Button size="small" danger loading={revoking.isLoading && revoking.originalArgs === t.id} data-testid={`token-${t.id}-revoke`}>
              Revoke
            </Button>
          </Popconfirm>
        ),
    },
  ];

  return (
    <Card size="small" title="Operator API tokens" data-testid="operator-tokens">
      <Typography.Paragraph type="secondary">
        One named token per script; revoke one without touching the others. A new key is shown once.
      </Typography.Paragraph>
      <Form<{ name: string }> form={form} layout="inline" onFinish={onCreate} style={{ marginBottom: 12 }} autoComplete="off">
        <Form.Item
          label="Token name"
          name="name"
          rules={[
            { required: true, whitespace: true, message: "Name the token (e.g. the script using it)" },
            { max: 100, message: "At most 100 characters" },
          ]}
        >
          <Input data-testid="token-name" placeholder="rebalancer-cron" style={{ width: 240 }} />
        </Form.Item>
        <Form.Item>
          <Button type="primary" htmlType="submit" loading={created.isLoading} data-testid="token-create">
            Create token
          </Button>
        </Form.Item>
      </Form>
      {error ? <ApiErrorAlert error={error} what="Operator tokens" testId="tokens-error" /> : null}
      {!error ? (
        <Table<OperatorToken>
          rowKey="id"
          size="small"
          loading={isLoading}
          columns={columns}
          dataSource={data ?? []}
          pagination={{ pageSize: 10, hideOnSinglePage: true }}
          scroll={{ x: "max-content" }}
          onRow={(t) => ({ "data-testid": `token-row-${t.id}` }) as HTMLAttributes<HTMLElement>}
          locale={{ emptyText: "No operator tokens" }}
        />
      ) : null}
      <NewKeyModal name={created.data?.name ?? ""} tokenKey={created.data?.key} onClose={() => created.reset()} />
    </Card>
  );
}
