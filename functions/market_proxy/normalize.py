"""Exchange data, as ccxt parsed it, into the service's answers (:mod:`market_proxy.models`).

ccxt's parsers are lenient: an unreadable body becomes a ticker of nulls, and whatever
number an exchange sends (infinities, negative prices) passes through. Here every value is
checked against its model; what does not fit is an unreadable answer
(:class:`errors.UpstreamBadResponse`), never data to cache or to serve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from market_proxy import errors
from market_proxy.models import FundingData, OrderBookData, TickerData, TradesData

# ccxt's unified ticker fields, by the names this service gives them.
_TICKER_FIELDS = {
    "bid": "bid",
    "ask": "ask",
    "last": "last",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "vwap": "vwap",
    "base_volume": "baseVolume",
    "quote_volume": "quoteVolume",
    "change": "change",
    "percentage": "percentage",
}


def ticker(exchange_id: str, market: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The public shape of a ticker: ccxt's unified fields, named in snake case.

    Raises :class:`errors.UpstreamBadResponse` when a value is not a finite number (or a
    price is negative), or when the answer holds no price at all.
    """
    fields = _identity(exchange_id, market, raw)
    for name, source in _TICKER_FIELDS.items():
        value = raw.get(source)
        fields[name] = _number(value)
    checked = _validated(TickerData, fields, exchange_id, f"the ticker of {market['symbol']}")
    if checked["last"] is None and (checked["bid"] is None or checked["ask"] is None):
        raise errors.UpstreamBadResponse(
            f"{exchange_id}: the ticker of {market['symbol']} has no price"
        )
    return checked


def candles(exchange_id: str, rows: Any) -> list[list[Any]]:
    """Candles as ``[timestamp, open, high, low, close, volume]``: an integer open time
    (epoch ms) and five finite numbers, prices not negative; a missing volume is 0.

    Raises :class:`errors.UpstreamBadResponse` for anything else.
    """
    if not isinstance(rows, list):
        raise errors.UpstreamBadResponse(f"{exchange_id}: candles that could not be read")
    checked = []
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise errors.UpstreamBadResponse(f"{exchange_id}: candles that could not be read")
        stamp = _integer(row[0])
        prices = [_finite(value) for value in row[1:5]]
        volume = 0.0 if row[5] is None else _finite(row[5])
        if stamp is None or stamp < 0 or volume is None or any(p is None for p in prices):
            raise errors.UpstreamBadResponse(f"{exchange_id}: candles that could not be read")
        checked.append([stamp, *prices, volume])
    return checked


def order_book(
    exchange_id: str, market: Mapping[str, Any], raw: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    """A book as ``[price, amount]`` levels, best first, at most ``depth`` a side, with its
    spread and mid. Raises :class:`errors.UpstreamBadResponse` for a level that is not two
    finite numbers (prices and amounts not negative), or for sides that cross."""
    what = f"the order book of {market['symbol']}"
    bids = sorted(_levels(raw.get("bids"), exchange_id, what), key=lambda lv: -lv[0])[:depth]
    asks = sorted(_levels(raw.get("asks"), exchange_id, what), key=lambda lv: lv[0])[:depth]
    spread = mid = None
    if bids and asks:
        spread, mid = asks[0][0] - bids[0][0], (asks[0][0] + bids[0][0]) / 2
    fields = {
        **_identity(exchange_id, market, raw),
        "nonce": _integer(raw.get("nonce")),
        "depth": max(len(bids), len(asks)),
        "bids": bids,
        "asks": asks,
        "spread": spread,
        "mid": mid,
    }
    return _validated(OrderBookData, fields, exchange_id, what)


def book_depth(book: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """A normalized book cut to ``depth`` levels a side (spread and mid stay the same)."""
    bids, asks = book["bids"][:depth], book["asks"][:depth]
    return {**book, "bids": bids, "asks": asks, "depth": max(len(bids), len(asks))}


def trades(exchange_id: str, market: Mapping[str, Any], raw: Any) -> dict[str, Any]:
    """Public trades, newest last. Raises :class:`errors.UpstreamBadResponse` for a trade
    without a time, or with a price or amount that is not a finite number."""
    what = f"the trades of {market['symbol']}"
    if not isinstance(raw, list):
        raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read")
    rows = []
    for trade in raw:
        if not isinstance(trade, Mapping):
            raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read")
        side = trade.get("side")
        trade_id = trade.get("id")
        rows.append(
            {
                "id": None if trade_id is None else str(trade_id),
                "timestamp": _integer(trade.get("timestamp")),
                "datetime": _text(trade.get("datetime")),
                "side": side if side in ("buy", "sell") else None,
                "price": _number(trade.get("price")),
                "amount": _number(trade.get("amount")),
                "cost": _number(trade.get("cost")),
            }
        )
    rows.sort(key=lambda row: row["timestamp"] if isinstance(row["timestamp"], int) else -1)
    fields = {
        "exchange": exchange_id,
        "symbol": market["symbol"],
        "market_id": market["id"],
        "timestamp": rows[-1]["timestamp"] if rows else None,
        "trades": rows,
    }
    return _validated(TradesData, fields, exchange_id, what)


def funding(exchange_id: str, market: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """A perpetual's funding: ccxt's unified funding-rate fields, named in snake case, with
    one meaning of "next" on every exchange.

    ccxt's ``fundingTimestamp`` is the next funding (when ``fundingRate`` is paid) on every
    exchange: Binance's and Bybit's ``nextFundingTime``, OKX's ``fundingTime``. Its
    ``nextFundingTimestamp`` is the one after, which only OKX gives (its ``nextFundingTime``).
    Here ``next_funding_timestamp`` is the former and ``following_funding_timestamp`` the
    latter. Mark and index price stay null where ccxt leaves them so (OKX).
    """
    fields = {
        **_identity(exchange_id, market, raw),
        "funding_rate": _number(raw.get("fundingRate")),
        "next_funding_timestamp": _integer(raw.get("fundingTimestamp")),
        "next_funding_rate": _number(raw.get("nextFundingRate")),
        "following_funding_timestamp": _integer(raw.get("nextFundingTimestamp")),
        "interval": _text(raw.get("interval")),
        "mark_price": _number(raw.get("markPrice")),
        "index_price": _number(raw.get("indexPrice")),
    }
    checked = _validated(FundingData, fields, exchange_id, f"the funding of {market['symbol']}")
    if checked["funding_rate"] is None and checked["mark_price"] is None:
        raise errors.UpstreamBadResponse(f"{exchange_id}: no funding for {market['symbol']}")
    return checked


def _identity(
    exchange_id: str, market: Mapping[str, Any], raw: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "exchange": exchange_id,
        "symbol": market["symbol"],
        "market_id": market["id"],
        "timestamp": _integer(raw.get("timestamp")),
        "datetime": _text(raw.get("datetime")),
    }


def _levels(levels: Any, exchange_id: str, what: str) -> list[list[float]]:
    if not isinstance(levels, list):
        raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read")
    checked = []
    for level in levels:
        if not isinstance(level, list | tuple) or len(level) < 2:
            raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read")
        price, amount = _finite(level[0]), _finite(level[1])
        if price is None or amount is None:
            raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read")
        checked.append([price, amount])
    return checked


def _validated(
    model: type[BaseModel], fields: dict[str, Any], exchange_id: str, what: str
) -> dict[str, Any]:
    try:
        return model.model_validate(fields).model_dump()
    except ValidationError:
        raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read") from None


def _number(value: Any) -> Any:
    """A number as ccxt gave it (its model checks it), or None when there is none."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _finite(value: Any) -> float | None:
    """``value`` as a finite number that is not negative, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past what a double holds
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
