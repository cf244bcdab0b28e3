"""OKX's v5 routes and its error answers (the answers are built in okx.py).

OKX answers a bad request with ``{"code": <not "0">, "msg": ..., "data": []}`` (API v5
"Error Code": 50014 a required parameter is empty, 51000 a parameter is wrong, 51001 the
instrument does not exist). A ``limit`` or ``sz`` above the most is served as the most.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import okx
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import Call, Handler, Reply, Route, integer

_NO_INSTRUMENT = Reply(200, okx.error("51001", "Instrument ID does not exist"))


def _bad(name: str) -> Reply:
    return Reply(200, okx.error("51000", f"Parameter {name} error"))


def _empty(name: str) -> Reply:
    return Reply(200, okx.error("50014", f"Parameter {name} can not be empty"))


def route(call: Call) -> Route:
    endpoint, handler = _ROUTES.get(call.path, ("other", None))
    return Route(endpoint, handler)


def _market(book: MarketBook, call: Call) -> Market:
    inst_id = call.params.get("instId")
    if not inst_id:
        raise _empty("instId")
    market = book.find("okx", inst_id)
    if market is None:
        raise _NO_INSTRUMENT
    return market


def _kind(call: Call) -> str | None:
    name = call.params.get("instType")
    if not name:
        raise _empty("instType")
    if name not in okx.INST_TYPES:
        raise _bad("instType")
    return okx.INST_TYPES[name]


def _count(call: Call, name: str, default: int, most: int) -> int:
    value = integer(call.params, name, _bad(name))
    value = default if value is None else value
    if value < 1:
        raise _bad(name)
    return min(value, most)


def _instruments(book: MarketBook, call: Call) -> Any:
    return okx.instruments(book, _kind(call))


def _ticker(book: MarketBook, call: Call) -> Any:
    return okx.tickers(book, [_market(book, call)])


def _tickers(book: MarketBook, call: Call) -> Any:
    kind = _kind(call)
    return okx.tickers(book, book.of_kind("okx", kind) if kind else [])


def _candles(recent_only: bool) -> Handler:
    def handler(book: MarketBook, call: Call) -> Any:
        market = _market(book, call)
        bar = call.params.get("bar") or "1m"
        if bar not in okx.BARS:
            raise _bad("bar")
        return okx.candles(
            book,
            market,
            bar,
            after=integer(call.params, "after", _bad("after")),
            before=integer(call.params, "before", _bad("before")),
            limit=_count(call, "limit", 100, okx.MOST_CANDLES),
            recent_only=recent_only,
        )

    return handler


def _books(book: MarketBook, call: Call) -> Any:
    return okx.order_book(book, _market(book, call), _count(call, "sz", 1, 400))


def _trades(book: MarketBook, call: Call) -> Any:
    return okx.trades(book, _market(book, call), _count(call, "limit", 100, 500))


def _swap(book: MarketBook, call: Call) -> Market:
    market = _market(book, call)
    if market.kind == "spot":
        raise _bad("instId")
    return market


def _funding_rate(book: MarketBook, call: Call) -> Any:
    if call.params.get("instId") == "ANY":
        return okx.funding_rates(book, book.of_kind("okx", "linear"))
    return okx.funding_rates(book, [_swap(book, call)])


def _mark_price(book: MarketBook, call: Call) -> Any:
    if call.params.get("instId"):
        return okx.mark_price(book, [_swap(book, call)])
    return okx.mark_price(book, book.of_kind("okx", "linear"))


def _time(book: MarketBook, call: Call) -> Any:
    return okx.envelope([{"ts": str(book.now_ms())}])


_ROUTES: dict[str, tuple[str, Handler]] = {
    "/api/v5/public/instruments": ("markets", _instruments),
    "/api/v5/market/ticker": ("ticker", _ticker),
    "/api/v5/market/tickers": ("tickers", _tickers),
    "/api/v5/market/candles": ("ohlcv", _candles(recent_only=True)),
    "/api/v5/market/history-candles": ("ohlcv", _candles(recent_only=False)),
    "/api/v5/market/books": ("orderbook", _books),
    "/api/v5/market/trades": ("trades", _trades),
    "/api/v5/public/funding-rate": ("funding", _funding_rate),
    "/api/v5/public/mark-price": ("funding", _mark_price),
    "/api/v5/public/time": ("other", _time),
    # Signed ("Get currencies"): what ccxt loads with markets when it holds credentials.
    # No currency is listed; ccxt then builds them from the markets.
    "/api/v5/asset/currencies": (
        "markets",
        lambda book, call: {"code": "0", "msg": "", "data": []},
    ),
}
