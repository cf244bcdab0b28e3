"""Bybit's v5 routes and its error answers (the answers are built in bybit.py).

Bybit answers a bad request with a 200 whose ``retCode`` is not 0 (V5 "Error Codes": 10001
for parameter errors; "Not supported symbols" for an unknown symbol). ``/v5/market/tickers``
with a ``symbol`` is "ticker", without one "tickers": ccxt's ``fetch_funding_rate`` sends the
very request ``fetch_ticker`` sends for a perpetual, so Bybit has no "funding" of its own.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import bybit
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import Call, Handler, Reply, Route, integer

_SPOT_BOOK = (1, 200, 1)  # least, most, default
_LINEAR_BOOK = (1, 500, 25)
_SPOT_TRADES = (1, 60, 60)
_LINEAR_TRADES = (1, 1000, 500)


def _bad(book: MarketBook, message: str) -> Reply:
    return Reply(200, bybit.error(book.now_ms(), 10001, message))


def route(call: Call) -> Route:
    if call.path == "/v5/market/tickers":
        return Route("ticker" if call.params.get("symbol") else "tickers", _tickers)
    endpoint, handler = _ROUTES.get(call.path, ("other", None))
    return Route(endpoint, handler)


def _category(book: MarketBook, call: Call, *, default: str | None = None) -> str:
    category = call.params.get("category") or default
    if category not in bybit.CATEGORIES:
        raise _bad(book, "Illegal category")
    return category


def _market(book: MarketBook, call: Call, category: str) -> Market:
    kind = "linear" if category == "linear" else category
    market = book.find("bybit", call.params.get("symbol", ""), kind)
    if market is None:
        raise _bad(book, "Not supported symbols")
    return market


def _bounded(book: MarketBook, call: Call, name: str, bounds: tuple[int, int, int]) -> int:
    least, most, default = bounds
    value = integer(call.params, name, _bad(book, f"params error: {name} invalid"))
    value = default if value is None else value
    if not least <= value <= most:
        raise _bad(book, f"params error: {name} must be in [{least}, {most}]")
    return value


def _instruments(book: MarketBook, call: Call) -> Any:
    category = _category(book, call)
    return bybit.instruments(book, category, call.params.get("status"))


def _tickers(book: MarketBook, call: Call) -> Any:
    category = _category(book, call)
    if call.params.get("symbol"):
        return bybit.tickers(book, category, [_market(book, call, category)])
    return bybit.tickers(book, category, book.of_kind("bybit", category))


def _kline(book: MarketBook, call: Call) -> Any:
    category = _category(book, call, default="linear")
    market = _market(book, call, category)
    interval = call.params.get("interval", "")
    if interval not in bybit.INTERVALS:
        raise _bad(book, "Invalid period!")
    limit = _bounded(book, call, "limit", (1, 1000, 200))
    invalid = _bad(book, "params error: start or end invalid")
    start, end = integer(call.params, "start", invalid), integer(call.params, "end", invalid)
    if start is not None and end is not None and start > end:
        raise invalid
    return bybit.kline(book, market, category, interval, start=start, end=end, limit=limit)


def _orderbook(book: MarketBook, call: Call) -> Any:
    category = _category(book, call)
    market = _market(book, call, category)
    limit = _bounded(book, call, "limit", _SPOT_BOOK if category == "spot" else _LINEAR_BOOK)
    return bybit.orderbook(book, market, limit)


def _recent_trades(book: MarketBook, call: Call) -> Any:
    category = _category(book, call, default="linear")
    market = _market(book, call, category)
    limit = _bounded(book, call, "limit", _SPOT_TRADES if category == "spot" else _LINEAR_TRADES)
    return bybit.recent_trades(book, market, category, limit)


_ROUTES: dict[str, tuple[str, Handler]] = {
    "/v5/market/instruments-info": ("markets", _instruments),
    "/v5/market/kline": ("ohlcv", _kline),
    "/v5/market/orderbook": ("orderbook", _orderbook),
    "/v5/market/recent-trade": ("trades", _recent_trades),
    "/v5/market/time": ("other", lambda book, call: bybit.server_time(book)),
    # Signed ("Get Coin Info"): what ccxt loads with markets when it holds credentials. No
    # coin is listed; ccxt then builds currencies from the markets.
    "/v5/asset/coin/query-info": (
        "markets",
        lambda book, call: {
            "retCode": 0,
            "retMsg": "success",
            "result": {"rows": []},
            "retExtInfo": {},
            "time": book.now_ms(),
        },
    ),
}
