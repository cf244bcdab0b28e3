"""How OHLCV pages, read off ccxt's own code for exchanges of every paging style (no call is
made: ccxt builds its requests and the probe compares them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from market_proxy.exchanges.paging import DEFAULT_PAGE, Paging, derive

pytestmark = pytest.mark.anyio


def spot_market() -> dict[str, Any]:
    return {
        "id": "BTCUSDT",
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "baseId": "BTC",
        "quoteId": "USDT",
        "type": "spot",
        "spot": True,
        "active": True,
        "precision": {"price": 0.01, "amount": 0.001},
        "limits": {},
        "info": {},
    }


@pytest.fixture
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    import ccxt.async_support as ccxt_async

    exchange = getattr(ccxt_async, request.param)({"timeout_on_exit": 0})
    yield exchange
    await exchange.close()


# What ccxt's code says of each (see its fetch_ohlcv): bounded where it maps `until` onto the
# request; not following since where `since` never reaches the exchange.
@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("binance", Paging(page=1000, follows_since=True, bounded=True)),  # startTime/endTime
        ("kraken", Paging(page=720, follows_since=True, bounded=False)),  # since only
        ("coinbaseexchange", Paging(page=300, follows_since=True, bounded=True)),  # start/end
        ("bybit", Paging(page=1000, follows_since=True, bounded=True)),  # start/end
        ("okx", Paging(page=200, follows_since=True, bounded=True)),  # before/after
        ("gate", Paging(page=1000, follows_since=True, bounded=True)),  # from/to
        ("kucoin", Paging(page=1500, follows_since=True, bounded=False)),  # until sent raw
        ("gemini", Paging(page=DEFAULT_PAGE, follows_since=False, bounded=False)),  # latest only
        ("bullish", Paging(page=100, follows_since=True, bounded=True)),  # its paginate: 100
        ("mexc", Paging(page=500, follows_since=True, bounded=False)),  # until also sent raw
    ],
    indirect=["client"],
)
async def test_each_exchanges_paging_is_what_its_ccxt_code_builds(
    client: Any, expected: Paging
) -> None:
    assert await derive(client, spot_market(), "1h") == expected


@pytest.mark.parametrize(
    "client",
    ["upbit", "bitstamp", "htx", "cryptocom", "deribit", "poloniex", "bitget", "hyperliquid"],
    indirect=True,
)
async def test_exchanges_no_test_plays_get_a_paging_without_a_call(client: Any) -> None:
    sent: list[str] = []

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args))
        raise AssertionError("derive must not reach the network")

    client.fetch = refuse
    paging = await derive(client, spot_market(), "1h")
    assert paging.page > 0
    assert sent == []
