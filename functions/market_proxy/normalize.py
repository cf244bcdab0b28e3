"""Exchange data, as ccxt parsed it, into the service's answers (:mod:`market_proxy.models`).

ccxt's parsers are lenient: an unreadable body becomes a ticker of nulls, and whatever
number an exchange sends (infinities, negative prices) passes through. Here every value is
checked against its model; what does not fit is an unreadable answer
(:class:`errors.UpstreamBadResponse`), never data to cache or to serve.
"""

from __future__ import annotations

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


def _validated(
    model: type[TickerData], fields: dict[str, Any], exchange_id: str, what: str
) -> dict[str, Any]:
    try:
        return model.model_validate(fields).model_dump()
    except ValidationError:
        raise errors.UpstreamBadResponse(f"{exchange_id}: {what} could not be read") from None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
