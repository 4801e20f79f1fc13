import { Alert, Button, Card, Form, Input, Typography } from "antd";
import { Navigate, useLocation } from "react-router-dom";
import { describeError } from "../../api/errors";
import { useLoginMutation, useMeQuery } from "./authApi";

interface LoginForm {
  username: string;
  password: string;
}

export function LoginPage() {
  const [login, { isLoading, error }] = useLoginMutation();
  const me = useMeQuery();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? "/";

  // After an expired session `data` still holds the old user next to the error: stay here then.
  if (me.data && !me.isError) return <Navigate to={from} replace />;

  // On success the mutation seeds the `me` cache and the <Navigate> above takes over.
  const onFinish = (values: LoginForm) => void login(values);

  return (
    <div style={{ minHeight: "100vh", display: "flex", alignItems: "center", justifyContent: "center", background: "#f0f2f5" }}>
      <Card style={{ width: 380 }} data-testid="login-card">
        <Typography.Title level={3} style={{ marginTop: 0 }}>
          arbsite desk
        </Typography.Title>
        <Typography.Paragraph type="secondary">Sign in to the arbitrage &amp; TWAP desk.</Typography.Paragraph>
        {error ? (
          <Alert data-testid="login-error" type="error" showIcon style={{ marginBottom: 16 }} message={describeError(error)} />
        ) : null}
        <Form<LoginForm> layout="vertical" onFinish={onFinish} requiredMark={false}>
          <Form.Item label="Username" name="username" rules={[{ required: true, message: "Enter your username" }]}>
            <Input autoComplete="username" autoFocus data-testid="login-username" />
          </Form.Item>
          <Form.Item label="Password" name="password" rules={[{ required: true, message: "Enter your password" }]}>
            <Input.Password autoComplete="current-password" data-testid="login-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={isLoading} data-testid="login-submit">
            Sign in
          </Button>
        </Form>
      </Card>
    </div>
  );
}
