"""OKX and Bitget markets parsed by ccxt itself from the recorded instrument payloads.

The ccxt client's `fetch` answers from the recordings (nothing reaches a network), so every
market field (contractSize, lot step, minimum) is what ccxt's own `load_markets` makes of
what the exchange sent.

- OKX: `okx/metadata/rest_instruments_{SPOT,SWAP}_*.json` are whole recorded responses.
  The 2022 SWAP set has BTC-USDT-SWAP with ctVal 0.01 BTC and lotSz/minSz 1 (whole
  contracts); the recent fixture has the same ctVal with lotSz/minSz 0.01 (fractional contracts).
- Bitget: `bitget/metadata/v2_symbols_and_contracts_items_from_ccxt.json` holds recorded v2
  items without their response envelope. The envelope around them is Bitget's
  `{"code", "msg", "requestTime", "data"}`, the shape of the recorded v1 response
  `bitget/metadata/mix_v1_contracts_umcbl_2022-04-07_trimmed.json`; endpoints with no recorded
  items answer an empty `data`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt

from exchanges import connectivity
from exchanges.symbols import Exchange

OKX_SWAP_2022 = "okx/metadata/rest_instruments_SWAP_2022-05-13_trimmed.json"
OKX_SWAP_RECENT = "okx/metadata/rest_instruments_SWAP_recent_fixture.json"
OKX_SPOT_2022 = "okx/metadata/rest_instruments_SPOT_2022-05-13_trimmed.json"
OKX_ORDERS_HISTORY = "okx/trading/2025-05-11_rest_orders-history.json"
BITGET_V2_ITEMS = "bitget/metadata/v2_symbols_and_contracts_items_from_ccxt.json"


def okx_client(data_dir: Path, swap_file: str = OKX_SWAP_2022) -> Any:
    """A sync ccxt okx client whose markets came from the recorded instruments."""
    client = ccxt.okx({"options": {"fetchMarkets": {"types": ["spot", "swap"]}}})

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        query = parse_qs(urlsplit(url).query)
        name = {"SWAP": swap_file, "SPOT": OKX_SPOT_2022}[query["instType"][0]]
        return json.loads((data_dir / name).read_text())

    client.fetch = fetch
    client.load_markets()
    return client


def bitget_client(data_dir: Path) -> Any:
    """A sync ccxt bitget client whose markets came from the recorded v2 items."""
    items = json.loads((data_dir / BITGET_V2_ITEMS).read_text())
    spot = [i["info"] for i in items if "/spot/" in i["endpoint"]]
    usdt_futures = [i["info"] for i in items if "productType=USDT-FUTURES" in i["endpoint"]]
    client = ccxt.bitget({"options": {"fetchMarkets": {"types": ["spot", "swap"]}}})

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path.endswith("/spot/public/symbols"):
            data = spot
        elif parts.path.endswith("/mix/market/contracts") and query.get("productType") == ["USDT-FUTURES"]:
            data = usdt_futures
        else:
            data = []  # margin currencies and the other futures product types: none recorded
        return {"code": "00000", "msg": "success", "requestTime": 1700000000000, "data": data}

    client.fetch = fetch
    client.load_markets()
    return client


def seed(exchange: Exchange, client: Any) -> None:
    """Put the recorded markets into connectivity's per-process cache, as a first load would."""
    connectivity._MARKETS[exchange] = (client.markets, client.currencies, time.monotonic())
