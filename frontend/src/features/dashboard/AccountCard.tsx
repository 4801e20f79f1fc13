import { Card, Select, Space, Table, Tag } from "antd";
import { useState } from "react";
import { ApiErrorAlert } from "../../components/ApiErrorAlert";
import { EXCHANGES } from "../arbitrage/types";
import { useGetAccountQuery, type AccountBalance } from "./dashboardApi";

export function AccountCard() {
  const [exchange, setExchange] = useState<string>("binance");
  const { data, error, isFetching } = useGetAccountQuery(exchange);
  const paper = data?.paper ?? data?.publicOnly;
  return (
    <Card
      size="small"
      title={
        <Space>
          Account {paper ? <Tag color="purple" data-testid="account-paper">PAPER account</Tag> : null}
        </Space>
      }
      extra={
        <Select
          size="small"
          value={exchange}
          onChange={setExchange}
          style={{ width: 120 }}
          aria-label="Account exchange"
          data-testid="account-exchange"
          options={EXCHANGES.map((e) => ({ value: e, label: e }))}
        />
      }
    >
      {error ? <ApiErrorAlert error={error} what="Account" compact /> : null}
      <Table<AccountBalance>
        size="small"
        rowKey="asset"
        loading={isFetching}
        pagination={false}
        dataSource={data?.balances ?? []}
        columns={[
          { title: "Asset", dataIndex: "asset" },
          { title: "Free", dataIndex: "free" },
          { title: "Total", dataIndex: "total", render: (v: unknown) => (v === undefined ? "—" : String(v)) },
        ]}
        locale={{ emptyText: error ? "Unavailable" : "No balances" }}
      />
      {data?.positions?.length ? (
        <div style={{ marginTop: 8, fontSize: 12 }}>{data.positions.length} open position(s)</div>
      ) : null}
    </Card>
  );
}
