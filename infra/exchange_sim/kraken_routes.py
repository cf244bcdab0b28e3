"""Kraken's routes (REST API v0 public market data; the answers are built in kraken.py).

Kraken answers its own errors with a 200 and ``{"error": [...]}``, as its API reference's
"General Usage" says; "Get Server Time" (/0/public/Time) and "Get System Status"
(/0/public/SystemStatus) are served as "other".
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import kraken
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import Call, Handler, Reply, Route, integer

_INVALID = Reply(200, kraken.error("EGeneral:Invalid arguments"))


def route(call: Call) -> Route:
    if call.path == "/0/public/Ticker":
        pairs = call.params.get("pair", "")
        return Route("tickers" if not pairs or "," in pairs else "ticker", _ticker)
    endpoint, handler = _ROUTES.get(call.path, ("other", None))
    return Route(endpoint, handler)


def _market(book: MarketBook, pair: str) -> Market:
    market = book.find("kraken", pair)
    if market is None:
        raise Reply(200, kraken.error("EQuery:Unknown asset pair"))
    return market


def _ticker(book: MarketBook, call: Call) -> Any:
    pairs = [p for p in call.params.get("pair", "").split(",") if p]
    if not pairs:
        return kraken.tickers(book, book.markets["kraken"])
    return kraken.tickers(book, [_market(book, pair) for pair in pairs])


def _ohlc(book: MarketBook, call: Call) -> Any:
    market = _market(book, call.params.get("pair", ""))
    interval = integer(call.params, "interval", _INVALID) or 1
    if interval not in kraken.INTERVALS_MIN:
        raise _INVALID
    return kraken.ohlc(book, market, interval, integer(call.params, "since", _INVALID))


def _depth(book: MarketBook, call: Call) -> Any:
    market = _market(book, call.params.get("pair", ""))
    count = integer(call.params, "count", _INVALID)
    count = 100 if count is None else count
    if not 1 <= count <= 500:
        raise _INVALID
    return kraken.depth(book, market, count)


def _trades(book: MarketBook, call: Call) -> Any:
    market = _market(book, call.params.get("pair", ""))
    count = integer(call.params, "count", _INVALID)
    count = 1000 if count is None else count
    if not 1 <= count <= 1000:
        raise _INVALID
    since = integer(call.params, "since", _INVALID)
    # `since` is seconds, or the nanosecond `last` of a previous answer.
    since_ms = None if since is None else since // 1_000_000 if since > 10**14 else since * 1000
    return kraken.trades(book, market, since_ms, count)


def _time(book: MarketBook, call: Call) -> Any:
    now = book.now_ms() // 1000
    return kraken.envelope({"unixtime": now, "rfc1123": ""})


def _status(book: MarketBook, call: Call) -> Any:
    return kraken.envelope({"status": "online", "timestamp": ""})


_ROUTES: dict[str, tuple[str, Handler]] = {
    "/0/public/Assets": ("markets", lambda book, call: kraken.assets(book)),
    "/0/public/AssetPairs": ("markets", lambda book, call: kraken.asset_pairs(book)),
    "/0/public/OHLC": ("ohlcv", _ohlc),
    "/0/public/Depth": ("orderbook", _depth),
    "/0/public/Trades": ("trades", _trades),
    "/0/public/Time": ("other", _time),
    "/0/public/SystemStatus": ("other", _status),
}
