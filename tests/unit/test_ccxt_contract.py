"""What the service relies on of ccxt beyond its unified API (market_proxy.exchanges.
ccxt_internals), checked against the installed release: a ccxt upgrade that changes any of
it fails here, not in production."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from market_proxy.exchanges.ccxt_internals import (
    Seen,
    answer_seen,
    forget_answer,
    markets_snapshot,
    restore_markets,
    strict_json,
)

pytestmark = pytest.mark.anyio


def binance_markets() -> list[dict[str, Any]]:
    return [
        {
            "id": "BTCUSDT",
            "symbol": "BTC/USDT",
            "base": "BTC",
            "quote": "USDT",
            "baseId": "BTC",
            "quoteId": "USDT",
            "type": "spot",
            "spot": True,
            "active": True,
            "precision": {"price": 0.01, "amount": 0.00001},
            "limits": {},
            "info": {"raw": "x" * 100},
        }
    ]


def test_the_transport_and_pagination_hooks_have_the_shape_relied_on() -> None:
    from ccxt.async_support.base.exchange import Exchange

    assert list(inspect.signature(Exchange.fetch).parameters) == [
        "self",
        "url",
        "method",
        "headers",
        "body",
    ]
    assert "limit" in inspect.signature(Exchange.safe_deterministic_call).parameters
    source = inspect.getsource(Exchange.fetch)
    # The body of an answer reaches parse_json only after on_rest_response saw its status.
    assert source.index("self.on_rest_response(") < source.index("self.parse_json(http_response)")
    # ...with the status and headers, in the coroutine that made the request.
    assert "self.on_rest_response(http_status_code, http_status_text, url, method, headers" in (
        source
    )


async def test_a_markets_snapshot_restores_what_load_markets_would_install() -> None:
    import ccxt.async_support as ccxt_async

    loaded = ccxt_async.binance({"timeout_on_exit": 0})
    loaded.set_markets(binance_markets())
    loaded.options["marketHelperProps"] = ["sapiRateLimit"]
    loaded.options["sapiRateLimit"] = 42
    restored = ccxt_async.binance({"timeout_on_exit": 0})
    restore_markets(restored, markets_snapshot(loaded))
    assert restored.market("BTC/USDT")["id"] == "BTCUSDT"
    assert restored.markets_by_id["BTCUSDT"][0]["symbol"] == "BTC/USDT"
    assert "info" not in markets_snapshot(loaded)["markets"][0], "the snapshot drops raw info"
    assert restored.options["sapiRateLimit"] == 42
    await loaded.close()
    await restored.close()


async def test_strict_json_refuses_what_ccxt_would_read_as_no_body() -> None:
    import ccxt.async_support as ccxt_async
    from ccxt.base.errors import BadResponse

    client = ccxt_async.kraken({"timeout_on_exit": 0})
    strict_json(client)
    client.on_rest_response(200, "OK", "u", "GET", {}, "{,}", {}, "")
    with pytest.raises(BadResponse):
        client.parse_json("{,}")
    client.on_rest_response(200, "OK", "u", "GET", {}, "<html>", {}, "")
    with pytest.raises(BadResponse):
        client.parse_json("<html>")
    assert client.parse_json('{"a": 1}') == {"a": 1}, "JSON embedded in fields stays lenient"
    forget_answer()
    assert answer_seen() is None
    client.on_rest_response(429, "Too Many", "u", "GET", {"Retry-After": "3"}, "{}", {}, "")
    assert answer_seen() == Seen(429, {"Retry-After": "3"})
    await client.close()


async def test_every_session_a_client_opens_reads_answers_under_the_size_cap() -> None:
    # aiohttp builds each response from its session's `_response_class` (what its
    # `response_class=` argument sets), and ccxt makes its session in `open()`.
    import aiohttp

    from market_proxy.exchanges.answer_size import read_capped, response_class

    assert "response_class=self._response_class" in inspect.getsource(
        aiohttp.ClientSession._request
    )
    ccxt_async = pytest.importorskip("ccxt.async_support")
    client = ccxt_async.binance()
    read_capped(client)
    try:
        for _ in range(2):  # the first session, and the one made after a close
            client.open()
            assert client.session._response_class is response_class()
            await client.close()
            client.session = None
    finally:
        await client.close()
