"""Real ccxt clients aimed at the loopback exchange, and what its candles must hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from infra.exchange_sim.frames import Frame

EXCHANGES = ("binance", "kraken", "coinbaseexchange", "bybit", "okx")
# BTC/USDT spot under each exchange's own id.
SPOT_IDS = {
    "binance": "BTCUSDT",
    "kraken": "XBTUSDT",
    "coinbaseexchange": "BTC-USDT",
    "bybit": "BTCUSDT",
    "okx": "BTC-USDT",
}
ETH_IDS = {**SPOT_IDS, "kraken": "ETHUSDT"}
ETH_IDS = {name: market_id.replace("BTC", "ETH") for name, market_id in ETH_IDS.items()}
PERP_IDS = {"binance": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP"}
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"


@asynccontextmanager
async def ccxt_client(sim: ExchangeSim, exchange: str, **config: Any) -> AsyncIterator[Any]:
    """A ccxt async client of ``exchange`` with its markets loaded, no credentials, and the
    loopback exchange's clock as its own (ccxt picks OKX's candle endpoint by its clock).

    Plain HTTP on loopback: no CA bundle to load, and no quarter-second pause on close."""
    import ccxt.async_support as ccxt_async

    client = getattr(ccxt_async, exchange)(
        {
            **sim.ccxt_options(exchange),
            "enableRateLimit": False,
            "verify": False,
            "timeout_on_exit": 0,
            **config,
        }
    )
    client.milliseconds = sim.book.now_ms
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


def assert_candles(
    rows: list[list[Any]],
    sim: ExchangeSim,
    exchange: str,
    opens: list[int],
    frame: Frame,
    *,
    market_id: str | None = None,
    kind: str = "spot",
) -> None:
    """``rows`` (ccxt's parsed candles) open exactly at ``opens`` and hold the loopback
    exchange's own values for them."""
    assert [int(row[0]) for row in rows] == opens
    market = sim.book.find(exchange, market_id or SPOT_IDS[exchange], kind)
    assert market is not None
    for row in rows:
        open_ms = int(row[0])
        expected = sim.book.candle(market, frame.length(open_ms), open_ms)
        assert row[1:] == pytest.approx(list(expected), rel=1e-9, abs=1e-5), open_ms
