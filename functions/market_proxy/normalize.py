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

from pydantic import ValidationError

from market_proxy import errors
from market_proxy.models import TickerData

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
    fields: dict[str, Any] = {
        "exchange": exchange_id,
        "symbol": market["symbol"],
        "market_id": market["id"],
        "timestamp": _integer(raw.get("timestamp")),
        "datetime": raw.get("datetime") if isinstance(raw.get("datetime"), str) else None,
    }
    for name, source in _TICKER_FIELDS.items():
        value = raw.get(source)
        fields[name] = value if isinstance(value, int | float) and value is not True else None
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


def _validated(
    model: type[TickerData], fields: dict[str, Any], exchange_id: str, what: str
) -> dict[str, Any]:
    try:
        return model.model_validate(fields).model_dump()
    except ValidationError:
        raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read") from None


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
