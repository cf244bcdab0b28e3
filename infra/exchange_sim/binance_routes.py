"""Binance's routes, and its order book, trades, funding and batch tickers in its wire format.

Followed (developers.binance.com): Spot API "Market data endpoints": "Order book" (limit
default 100, at most 5000), "Compressed/Aggregate trades list" (limit default 500, at most
1000; with startTime and endTime no more than an hour apart; most recent trades when neither
is sent), "24hr ticker price change statistics" (one symbol, a ``symbols`` JSON array, or all);
USDⓈ-M and COIN-M Futures "Market Data": "Order Book" (limits 5, 10, 20, 50, 100, 500, 1000;
default 500) and "Mark Price" (``premiumIndex``: mark and index price, last funding rate,
next funding time; COIN-M always answers a list).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra.exchange_sim import activity, binance
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import Call, Handler, Reply, Route, integer

_INVALID_SYMBOL = Reply(400, {"code": -1121, "msg": "Invalid symbol."})
_BAD_PARAMETER = Reply(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
_FUTURES_DEPTHS = (5, 10, 20, 50, 100, 500, 1000)
_HOUR_MS = 3_600_000


def _s(value: float) -> str:
    return f"{value:.8f}"


def _limit(call: Call, default: int) -> int:
    limit = integer(call.params, "limit", _BAD_PARAMETER)
    return default if limit is None else limit


def route(call: Call) -> Route:
    if call.host == binance.SAPI_HOST and call.path in _SIGNED:
        return Route("markets", _SIGNED[call.path])
    for (product_host, prefix), (kind, _most) in binance.PRODUCTS.items():
        if call.host == product_host and call.path.startswith(prefix):
            tail = call.path[len(prefix) :]
            if tail == "/ticker/24hr":
                return Route("ticker" if "symbol" in call.params else "tickers", _ticker)
            if tail == "/premiumIndex" and kind != "spot":
                return Route("funding", _premium_index)
            if tail in _PRODUCT_ROUTES:
                endpoint, handler = _PRODUCT_ROUTES[tail]
                return Route(endpoint, handler)
    return Route("other")


def _kind(call: Call) -> tuple[str, int]:
    for (product_host, _prefix), product in binance.PRODUCTS.items():
        if call.host == product_host:
            return product
    raise Reply(404, {"code": -1, "msg": "unknown host"})


def _market(book: MarketBook, call: Call, symbol: str | None = None) -> Market:
    kind, _ = _kind(call)
    market = book.find("binance", symbol or call.params.get("symbol", ""), kind)
    if market is None:
        raise _INVALID_SYMBOL
    return market


def _markets(book: MarketBook, call: Call) -> Any:
    kind, _ = _kind(call)
    return binance.exchange_info(book, kind)


def _signed(answer: Callable[[MarketBook], Any]) -> Handler:
    def handler(book: MarketBook, call: Call) -> Any:
        # The secret is not known here, so only the signature's presence is checked.
        if "signature" not in call.params or "timestamp" not in call.params:
            raise Reply(
                400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
            )
        return answer(book)

    return handler


def _ticker(book: MarketBook, call: Call) -> Any:
    if "symbol" in call.params:
        return binance.ticker_24hr(book, _market(book, call))
    kind, _ = _kind(call)
    if "symbols" in call.params:
        try:
            ids = json.loads(call.params["symbols"])
        except ValueError:
            raise _BAD_PARAMETER from None
        return [binance.ticker_24hr(book, _market(book, call, str(i))) for i in ids]
    return [binance.ticker_24hr(book, m) for m in book.of_kind("binance", kind)]


def _klines(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    _, most = _kind(call)
    interval = call.params.get("interval", "")
    if interval not in binance.INTERVALS:
        raise Reply(400, {"code": -1120, "msg": "Invalid interval."})
    limit = _limit(call, 500)
    if not 1 <= limit <= most:
        raise _BAD_PARAMETER
    start = integer(call.params, "startTime", _BAD_PARAMETER)
    end = integer(call.params, "endTime", _BAD_PARAMETER)
    return binance.klines(book, market, interval, start=start, end=end, limit=limit)


def _depth(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    now = book.now_ms()
    if market.kind == "spot":
        limit = min(_limit(call, 100), 5000)
        if limit < 1:
            raise _BAD_PARAMETER
        head: dict[str, Any] = {"lastUpdateId": now}
    else:
        limit = _limit(call, 500)
        if limit not in _FUTURES_DEPTHS:
            raise Reply(400, {"code": -4021, "msg": "Invalid depth limit."})
        head = {"lastUpdateId": now, "E": now, "T": now}
        if market.kind == "inverse":
            head.update({"symbol": market.id, "pair": market.id.removesuffix("_PERP")})
    bids, asks = activity.depth(book, market, limit)
    return {
        **head,
        "bids": [[_s(p), _s(q)] for p, q in bids],
        "asks": [[_s(p), _s(q)] for p, q in asks],
    }


def _agg_trades(book: MarketBook, call: Call) -> Any:
    market = _market(book, call)
    limit = _limit(call, 500)
    if not 1 <= limit <= 1000:
        raise _BAD_PARAMETER
    start = integer(call.params, "startTime", _BAD_PARAMETER)
    end = integer(call.params, "endTime", _BAD_PARAMETER)
    from_id = integer(call.params, "fromId", _BAD_PARAMETER)
    if start is not None and end is not None and end - start > _HOUR_MS:
        raise Reply(400, {"code": -1127, "msg": "More than 1 hours between startTime and endTime."})
    if from_id is not None:
        found = activity.trades_from(
            book, market, from_id * activity.TRADE_EVERY_MS, until_ms=end, limit=limit
        )
    elif start is not None:
        found = activity.trades_from(book, market, start, until_ms=end, limit=limit)
    else:
        found = activity.trades_until(book, market, end, limit=limit)
    rows = []
    for trade in found:
        row: dict[str, Any] = {
            "a": trade.id,
            "p": _s(trade.price),
            "q": _s(trade.amount),
            "f": trade.id * 3,
            "l": trade.id * 3 + 2,
            "T": trade.ts,
            "m": trade.side == "sell",  # the buyer was the maker: the taker sold
        }
        if market.kind == "spot":
            row["M"] = True
        rows.append(row)
    return rows


def _premium_index(book: MarketBook, call: Call) -> Any:
    kind, _ = _kind(call)
    markets = [_market(book, call)] if "symbol" in call.params else book.of_kind("binance", kind)
    answers = [_mark_price(book, m) for m in markets]
    return answers[0] if kind == "linear" and "symbol" in call.params else answers


def _mark_price(book: MarketBook, market: Market) -> dict[str, Any]:
    funding = activity.funding(book, market)
    answer = {
        "symbol": market.id,
        "markPrice": _s(funding.mark),
        "indexPrice": _s(funding.index),
        "estimatedSettlePrice": _s(funding.index),
        "lastFundingRate": f"{funding.rate:.8f}",
        "interestRate": "0.00010000",
        "nextFundingTime": funding.next_ms,
        "time": funding.timestamp,
    }
    if market.kind == "inverse":
        answer["pair"] = market.id.removesuffix("_PERP")
    return answer


def _server_time(book: MarketBook, call: Call) -> Any:
    return {"serverTime": book.now_ms()}


_SIGNED: dict[str, Handler] = {
    binance.CAPITAL_CONFIG: _signed(binance.capital_config),
    binance.MARGIN_PAIRS: _signed(binance.margin_pairs),
    binance.ISOLATED_MARGIN_PAIRS: _signed(lambda book: binance.margin_pairs(book, isolated=True)),
}
_PRODUCT_ROUTES: dict[str, tuple[str, Handler]] = {
    "/exchangeInfo": ("markets", _markets),
    "/klines": ("ohlcv", _klines),
    "/depth": ("orderbook", _depth),
    "/aggTrades": ("trades", _agg_trades),
    "/time": ("other", _server_time),
    "/ping": ("other", lambda book, call: {}),
}
