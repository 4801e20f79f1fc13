"""The recorded payloads the emulator serves, found by file name under the data folder.

Everything here is read-only and cached per data folder: every subscription replays from the
same parsed lists, so nothing is re-read from disk while a test runs.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Binance: `{spot|usdm}_{SYMBOL}_{date}_rest_depth_limit1000.json` + `..._ws_depth*.jsonl[.gz]` of the same date.
_BINANCE_WS = re.compile(r"^(spot|usdm)_([A-Z0-9]+)_(\d{4}-\d{2}-\d{2})_ws_depth[^.]*\.jsonl(\.gz)?$")
# Bybit: `{spot|linear}_{SYMBOL}_{date}_ws_orderbook{depth}.jsonl[.gz]`, first line is the snapshot.
_BYBIT_WS = re.compile(r"^(spot|linear)_([A-Z0-9]+)_(\d{4}-\d{2}-\d{2})_ws_orderbook(\d+)\.jsonl(\.gz)?$")
# OKX: `{INST-ID}_{date}_ws_books.jsonl[.gz]` (the v5 `books` channel), first line is the snapshot.
_OKX_WS = re.compile(r"^([A-Z0-9-]+?)_(\d{4}-\d{2}-\d{2})_ws_books\.jsonl(\.gz)?$")
# OKX instruments: the recorded (cryptofeed) responses, `rest_instruments_{INSTTYPE}_{date}_trimmed.json`.
OKX_INST_TYPES = ("SPOT", "SWAP", "FUTURES")


@dataclass(frozen=True)
class Frame:
    """One recorded websocket message and when it arrived (seconds, recorder clock)."""

    at: float
    body: dict[str, Any]


@dataclass
class BinanceBook:
    """A Binance REST depth snapshot and the diff-depth events recorded around it."""

    market: str  # "spot" | "usdm"
    symbol: str
    snapshot: dict[str, Any]
    frames: list[Frame]  # the event itself (the `data` of a combined-stream message)
    stream: str  # the recorded stream name, e.g. "btcusdt@depth@100ms"


@dataclass
class BybitBook:
    """A Bybit v5 order-book stream whose first message is the snapshot."""

    category: str  # "spot" | "linear"
    symbol: str
    depth: int
    frames: list[Frame]

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.frames[0].body


@dataclass
class OkxBook:
    """An OKX v5 `books` stream for one instId: a snapshot, then updates, each with its CRC32 checksum."""

    inst_id: str
    frames: list[Frame]

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.frames[0].body


@dataclass
class Recordings:
    data_dir: Path
    binance_spot_info: bytes
    binance_usdm_info: bytes
    bybit_instruments: dict[str, dict[str, Any]]  # category -> full response
    binance_books: dict[tuple[str, str], BinanceBook] = field(default_factory=dict)  # (market, SYMBOL)
    bybit_books: dict[tuple[str, str], BybitBook] = field(default_factory=dict)  # (category, SYMBOL)
    okx_instruments: dict[str, bytes] = field(default_factory=dict)  # instType -> recorded response bytes
    okx_books: dict[str, OkxBook] = field(default_factory=dict)  # instId

    def binance_listed(self, market: str) -> set[str]:
        info = json.loads(self.binance_spot_info if market == "spot" else self.binance_usdm_info)
        return {s["symbol"] for s in info.get("symbols", [])}

    def bybit_listed(self, category: str) -> set[str]:
        response = self.bybit_instruments.get(category, {})
        return {item["symbol"] for item in response.get("result", {}).get("list", [])}


def read_lines(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return [json.loads(line) for line in handle if line.strip()]


def _arrival(line: dict[str, Any], message: dict[str, Any]) -> float:
    if "recv_ts_ns" in line:
        return int(line["recv_ts_ns"]) / 1e9
    if "recv_ts" in line:
        return float(line["recv_ts"])
    # Bybit's own dumps carry no wrapper: fall back to the exchange's timestamp.
    return int(message.get("ts", 0)) / 1000.0


def _load_binance(data_dir: Path) -> dict[tuple[str, str], BinanceBook]:
    books: dict[tuple[str, str], BinanceBook] = {}
    folder = data_dir / "binance" / "orderbook"
    for path in sorted(folder.glob("*_ws_depth*")):
        match = _BINANCE_WS.match(path.name)
        if not match:
            continue
        market, symbol, day = match.group(1), match.group(2), match.group(3)
        snapshot_path = folder / f"{market}_{symbol}_{day}_rest_depth_limit1000.json"
        if not snapshot_path.exists():
            continue
        frames: list[Frame] = []
        stream = ""
        for line in read_lines(path):
            message = line["msg"]
            event = message.get("data", message)
            stream = message.get("stream", stream)
            frames.append(Frame(_arrival(line, event), event))
        key = (market, symbol)
        # Several days for one symbol: the newest recording wins.
        books[key] = BinanceBook(market, symbol, json.loads(snapshot_path.read_text()), frames, stream)
    return books


def _load_bybit(data_dir: Path) -> dict[tuple[str, str], BybitBook]:
    books: dict[tuple[str, str], BybitBook] = {}
    for path in sorted((data_dir / "bybit" / "orderbook").glob("*_ws_orderbook*")):
        match = _BYBIT_WS.match(path.name)
        if not match:
            continue
        category, symbol, depth = match.group(1), match.group(2), int(match.group(4))
        frames = []
        for line in read_lines(path):
            message = line.get("msg", line)
            frames.append(Frame(_arrival(line, message), message))
        if frames and frames[0].body.get("type") == "snapshot":
            books[(category, symbol)] = BybitBook(category, symbol, depth, frames)
    return books


def _load_okx(data_dir: Path) -> tuple[dict[str, bytes], dict[str, OkxBook]]:
    meta = data_dir / "okx" / "metadata"
    instruments: dict[str, bytes] = {}
    for inst_type in OKX_INST_TYPES:
        found = sorted(meta.glob(f"rest_instruments_{inst_type}_*_trimmed.json"))
        if found:
            instruments[inst_type] = found[-1].read_bytes()
    books: dict[str, OkxBook] = {}
    for path in sorted((data_dir / "okx" / "orderbook").glob("*_ws_books.jsonl*")):
        match = _OKX_WS.match(path.name)
        if not match:
            continue
        frames = [Frame(_arrival(line, line["msg"]), line["msg"]) for line in read_lines(path)]
        if frames and frames[0].body.get("action") == "snapshot":
            books[match.group(1)] = OkxBook(match.group(1), frames)
    return instruments, books


@lru_cache(maxsize=4)
def load(data_dir: Path) -> Recordings:
    data_dir = Path(data_dir)
    meta_b = data_dir / "binance" / "metadata"
    meta_y = data_dir / "bybit" / "metadata"
    instruments = {}
    for category in ("spot", "linear"):
        found = sorted(meta_y.glob(f"{category}_instruments-info_*.json"))
        if found:
            instruments[category] = json.loads(found[-1].read_text())
    okx_instruments, okx_books = _load_okx(data_dir)
    recordings = Recordings(
        data_dir=data_dir,
        binance_spot_info=sorted(meta_b.glob("spot_exchangeInfo_*.json"))[-1].read_bytes(),
        binance_usdm_info=sorted(meta_b.glob("usdm_exchangeInfo_*.json"))[-1].read_bytes(),
        bybit_instruments=instruments,
        binance_books=_load_binance(data_dir),
        bybit_books=_load_bybit(data_dir),
        okx_instruments=okx_instruments,
        okx_books=okx_books,
    )
    return recordings
