/** Manual execution with a preview of the prices and spread the desk sees right now. */
import { Alert, App, Descriptions, Modal, Space, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { toApiError } from "../../api/errors";
import { useWs } from "../../app/hooks";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { useGetExchangesQuery } from "../dashboard/dashboardApi";
import { useExecutePairMutation } from "./arbitrageApi";
import { bestSpread, formatPercent } from "./spread";
import type { Execution, Pair, Quote } from "./types";

interface Props {
  pair: Pair | null;
  leg1?: Quote;
  leg2?: Quote;
  onClose: () => void;
}

function legLabel(leg: Pair["leg1"]): string {
  return `${leg.exchange} ${leg.type} ${leg.symbol}`;
}

export function ExecuteModal({ pair, leg1, leg2, onClose }: Props) {
  const [execute, { isLoading, reset }] = useExecutePairMutation();
  const [error, setError] = useState<unknown>(null);
  const ws = useWs();
  const { message, notification } = App.useApp();
  const { data: exchanges } = useGetExchangesQuery();

  useEffect(() => {
    setError(null);
    reset();
  }, [pair?.id, reset]);

  const paper = (exchanges ?? []).filter((e) => e.publicOnly && (e.name === pair?.leg1.exchange || e.name === pair?.leg2.exchange));
  const emulator = (exchanges ?? []).some((e) => e.venue === "emulator");

  if (!pair) return null;
  const view = bestSpread(pair.direction, leg1, leg2);
  const below = view ? view.spreadPercent < pair.threshold : true;
  const buyLeg = view ? (view.buyLeg === "leg1" ? pair.leg1 : pair.leg2) : null;
  const sellLeg = view ? (view.buyLeg === "leg1" ? pair.leg2 : pair.leg1) : null;

  const onOk = async () => {
    setError(null);
    ws.sendClientEvent("arbitrage_triggered", {
      pairId: pair.id,
      manual: true,
      direction: view?.direction ?? pair.direction,
      expectedBuy: view?.buyPrice ?? null,
      expectedSell: view?.sellPrice ?? null,
      expectedSpreadPercent: view?.spreadPercent ?? null,
    });
    const result = await execute(pair.id);
    if ("error" in result && result.error) {
      const err = toApiError(result.error);
      ws.sendClientEvent("arbitrage_result", { pairId: pair.id, success: false, code: err.code });
      setError(err);
      return;
    }
    const ex = result.data as Execution;
    const ok = ex.leg1?.success !== false && ex.leg2?.success !== false && (ex.state === undefined || ex.state === "completed");
    ws.sendClientEvent("arbitrage_result", {
      pairId: pair.id,
      success: ok,
      spreadPercent: ex.spreadPercent ?? null,
      pnl: ex.pnl ?? null,
      paper: ex.paper ?? null,
    });
    if (ok) {
      message.success(
        `Executed ${pair.id}: spread ${ex.spread ?? "—"} (${formatPercent(ex.spreadPercent)}), pnl ${ex.pnl ?? "—"}${ex.paper ? " [paper]" : ""}`,
      );
    } else {
      notification.warning({
        message: `Execution of ${pair.id}: ${ex.state ?? "partial"}`,
        description: `Leg 1 ${ex.leg1?.success ? "filled" : "failed"}, leg 2 ${ex.leg2?.success ? "filled" : "failed"}. ${
          ex.state === "unresolved"
            ? "One-sided exposure needs an operator now."
            : "The engine hedged or unwound the one-sided exposure; watch the alerts."
        }${ex.error ? ` (${ex.error.code}: ${ex.error.message})` : ""}`,
        duration: 0,
      });
    }
    onClose();
  };

  return (
    <Modal
      open
      title={`Execute ${pair.id}?`}
      okText="Execute both legs"
      okButtonProps={{ danger: true, loading: isLoading, "data-testid": "execute-confirm" }}
      cancelButtonProps={{ "data-testid": "execute-cancel" }}
      onOk={onOk}
      onCancel={onClose}
      data-testid="execute-modal"
    >
      {view && buyLeg && sellLeg ? (
        <Descriptions size="small" column={1} bordered>
          <Descriptions.Item label={`Buy on ${legLabel(buyLeg)}`}>
            <Typography.Text code data-testid="execute-buy-price">
              {view.buyPrice}
            </Typography.Text>{" "}
            (ask)
          </Descriptions.Item>
          <Descriptions.Item label={`Sell on ${legLabel(sellLeg)}`}>
            <Typography.Text code data-testid="execute-sell-price">
              {view.sellPrice}
            </Typography.Text>{" "}
            (bid)
          </Descriptions.Item>
          <Descriptions.Item label="Top-of-book spread">
            <span data-testid="execute-spread">{formatPercent(view.spreadPercent)}</span>{" "}
            <Tag color={below ? "orange" : "green"}>threshold {pair.threshold} %</Tag>
          </Descriptions.Item>
          <Descriptions.Item label="Quantity per leg">{pair.qty}</Descriptions.Item>
        </Descriptions>
      ) : (
        <Alert type="warning" showIcon message="No live prices for both legs yet; the engine will price the order itself." />
      )}
      {paper.length || emulator ? (
        <Space size={4} style={{ marginTop: 12 }} wrap>
          {paper.length ? (
            <Tag color="purple" data-testid="execute-paper">
              PAPER on {paper.map((e) => e.name).join(", ")} (no API keys)
            </Tag>
          ) : null}
          {emulator ? <Tag color="#cf1322">EMULATOR venue</Tag> : null}
        </Space>
      ) : null}
      {view && below ? (
        <Alert
          style={{ marginTop: 12 }}
          type="warning"
          showIcon
          data-testid="execute-below-threshold"
          message="Spread is below the threshold; risk controls may reject or the trade may lose money."
        />
      ) : null}
      <Typography.Paragraph type="secondary" style={{ marginTop: 12, marginBottom: 0 }}>
        The engine re-validates the executable spread (depth, fees, slippage) just before sending both legs.
      </Typography.Paragraph>
      {error ? (
        <div style={{ marginTop: 12 }}>
          <ApiErrorAlert error={error} what="Execution" testId="execute-error" />
        </div>
      ) : null}
    </Modal>
  );
}
