"""Coinbase Exchange's routes and its error answers (the answers are built in coinbase.py).

Coinbase answers errors with a status and ``{"message": ...}``: 404 ``NotFound`` for an
unknown product, 400 for bad parameters. The candle messages are Coinbase's own
("Unsupported granularity"; "granularity too small for the requested time range. Count of
aggregations requested exceeds 300", as reported in ccxt/ccxt#9268 and
teleprint-me/coinbasepro-python#4). "Get server time" (/time) is served as "other".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.exchange_sim import coinbase
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import Call, Handler, Reply, Route, integer

_NOT_FOUND = Reply(404, {"message": "NotFound"})
_TOO_MANY = (
    "granularity too small for the requested time range. Count of aggregations requested "
    "exceeds 300"
)


def _bad(message: str) -> Reply:
    return Reply(400, {"message": message})


def route(call: Call) -> Route:
    parts = call.path.strip("/").split("/")
    if parts == ["currencies"] or parts == ["products"]:
        return Route("markets", _currencies if parts == ["currencies"] else _products)
    if parts == ["products", "spark-lines"]:
        return Route("tickers", lambda book, call: coinbase.spark_lines(book))
    if parts == ["time"]:
        return Route("other", _time)
    if len(parts) == 2 and parts[0] == "products":
        return Route("markets", _product)
    if len(parts) == 3 and parts[0] == "products" and parts[2] in _PRODUCT_ROUTES:
        endpoint, handler = _PRODUCT_ROUTES[parts[2]]
        return Route(endpoint, handler)
    return Route("other")


def _market(book: MarketBook, call: Call) -> Market:
    market = book.find("coinbaseexchange", call.path.strip("/").split("/")[1])
    if market is None:
        raise _NOT_FOUND
    return market


def _currencies(book: MarketBook, call: Call) -> Any:
    return coinbase.currencies(book)


def _products(book: MarketBook, call: Call) -> Any:
    return coinbase.products(book)


def _product(book: MarketBook, call: Call) -> Any:
    return coinbase.product(_market(book, call))


def _time(book: MarketBook, call: Call) -> Any:
    now = book.now_ms()
    return {"iso": coinbase.iso(now), "epoch": now / 1000}


def _book(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    level = call.params.get("level", "1")
    if level not in coinbase.BOOK_LEVELS:
        raise _bad("Invalid level")
    return coinbase.order_book(book, market, level)


def _trades(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    invalid = _bad("Invalid limit")
    limit = integer(call.params, "limit", invalid)
    limit = 100 if limit is None else limit
    if not 1 <= limit <= 1000:
        raise invalid
    after = integer(call.params, "after", _bad("Invalid after"))
    before = integer(call.params, "before", _bad("Invalid before"))
    return coinbase.trades(book, market, limit=limit, after=after, before=before)


def _instant(text: str) -> int:
    """An ISO 8601 instant (or epoch seconds), in milliseconds."""
    try:
        if text.replace(".", "", 1).isdigit():
            return round(float(text) * 1000)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad("Invalid start or end time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _candles(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    granularity = integer(call.params, "granularity", _bad("Unsupported granularity"))
    if granularity not in coinbase.GRANULARITIES:
        raise _bad("Unsupported granularity")
    window = None
    if call.params.get("start") and call.params.get("end"):
        # Only both together make a window: with one of them, both are ignored.
        start, end = _instant(call.params["start"]), _instant(call.params["end"])
        if start > end:
            raise _bad("start must be before end")
        if end - start > coinbase.MOST_CANDLES * granularity * 1000:
            raise _bad(_TOO_MANY)
        window = (start, end)
    return coinbase.candles(book, market, granularity, window)


_PRODUCT_ROUTES: dict[str, tuple[str, Handler]] = {
    "ticker": ("ticker", lambda book, call: coinbase.ticker(book, _market(book, call))),
    "stats": ("ticker", lambda book, call: coinbase.stats(book, _market(book, call))),
    "book": ("orderbook", _book),
    "trades": ("trades", _trades),
    "candles": ("ohlcv", _candles),
}
