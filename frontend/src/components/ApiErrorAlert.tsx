/** Inline error for a failed query/mutation; endpoints the backend lacks read "not available yet". */
import { Alert } from "antd";
import { describeError, humanizeCode, isEndpointMissing, isRiskError, toApiError } from "../api/errors";

interface Props {
  error: unknown;
  /** What failed, e.g. "Pairs" — used in the "not available yet" wording. */
  what?: string;
  testId?: string;
  compact?: boolean;
}

export function ApiErrorAlert({ error, what, testId = "api-error", compact = false }: Props) {
  if (!error) return null;
  const err = toApiError(error);
  if (isEndpointMissing(err)) {
    return (
      <Alert
        data-testid={testId}
        type="info"
        showIcon
        message={`${what ?? "This feature"} is not available yet`}
        description={compact ? undefined : `The server does not provide this yet (${err.code}: ${err.message}).`}
      />
    );
  }
  const risk = isRiskError(err);
  return (
    <Alert
      data-testid={testId}
      type={risk ? "warning" : "error"}
      showIcon
      message={risk ? `Risk warning — ${humanizeCode(err.code)}` : what ? `${what}: ${humanizeCode(err.code)}` : humanizeCode(err.code)}
      description={compact ? undefined : describeError(err)}
    />
  );
}
