"""What the exchanges offer: their capabilities (from ccxt's ``has``) and their markets,
listed from the markets snapshot the service already holds (no upstream call)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.cache.entry import Freshness
from market_proxy.exchanges.paging import ohlcv_page_limit
from market_proxy.exchanges.venue import Venue


@dataclass(frozen=True, slots=True)
class MarketQuery:
    """Filters over an exchange's markets, and which page of the result."""

    q: str | None = None  # in the symbol, the market id, the base or the quote (any case)
    type: str | None = None  # spot, swap, future, option
    base: str | None = None
    quote: str | None = None
    active: bool | None = None
    cursor: str | None = None


def describe(client: Any) -> dict[str, Any]:
    """What one exchange offers, as ccxt's ``has`` says."""
    has = client.has or {}
    return {
        "id": client.id,
        "name": client.name,
        "ticker": bool(has.get("fetchTicker")),
        "tickers": bool(has.get("fetchTickers")),
        "ohlcv": bool(has.get("fetchOHLCV")),
        "orderbook": bool(has.get("fetchOrderBook")),
        "trades": bool(has.get("fetchTrades")),
        "funding": bool(has.get("fetchFundingRate")),
        "timeframes": list(client.timeframes or {}),
        "ohlcv_page_limit": ohlcv_page_limit(client),
    }


def markets_page(venue: Venue, query: MarketQuery, limit: int, now: int) -> Answer:
    """The page of ``venue``'s markets that ``query`` names, ``limit`` of them, sorted by
    symbol.

    The cursor is opaque to clients: the offset of the next page and a digest of the
    filters, so that a cursor is never applied to another query's results.
    """
    chosen = sorted(
        (m for m in venue.client.markets.values() if _matches(m, query)),
        key=lambda m: str(m["symbol"]),
    )
    filters = _digest(query)
    offset = _offset(query.cursor, filters)
    page = chosen[offset : offset + limit]
    following = offset + len(page)
    data = {
        "exchange": venue.id,
        "total": len(chosen),
        "markets": [_info(market) for market in page],
        "next_cursor": _cursor(following, filters) if following < len(chosen) else None,
    }
    freshness = Freshness(venue.markets_lifetime, "l1", now)
    return Answer.assembled(data, freshness)


def accepted_forms(market: Mapping[str, Any]) -> list[str]:
    """The ways of writing a market that the service reads as it (see ``symbols.py``)."""
    symbol = str(market["symbol"])
    pair, colon, settle = symbol.partition(":")
    forms = [
        symbol,
        pair.replace("/", "-") + colon + settle,
        pair.replace("/", "_") + colon + settle,
    ]
    forms.append(str(market["id"]))
    return list(dict.fromkeys(forms))


def _matches(market: Mapping[str, Any], query: MarketQuery) -> bool:
    if query.type is not None and market.get("type") != query.type:
        return False
    if query.base is not None and str(market.get("base", "")).upper() != query.base.upper():
        return False
    if query.quote is not None and str(market.get("quote", "")).upper() != query.quote.upper():
        return False
    if query.active is not None and market.get("active") is not query.active:
        return False
    if query.q:
        needle = query.q.upper()
        fields = (market.get("symbol"), market.get("id"), market.get("base"), market.get("quote"))
        return any(needle in str(field).upper() for field in fields if field)
    return True


def _info(market: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "symbol": market["symbol"],
        "market_id": market["id"],
        "type": market.get("type"),
        "base": market.get("base"),
        "quote": market.get("quote"),
        "settle": market.get("settle"),
        "active": market.get("active"),
        "precision": dict(market.get("precision") or {}),
        "limits": dict(market.get("limits") or {}),
        "accepted": accepted_forms(market),
    }


def _digest(query: MarketQuery) -> str:
    filters = {k: v for k, v in asdict(query).items() if k != "cursor"}
    return hashlib.blake2b(json.dumps(filters, sort_keys=True).encode(), digest_size=6).hexdigest()


def _cursor(offset: int, filters: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{filters}".encode()).decode().rstrip("=")


def _offset(cursor: str | None, filters: str) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset, _, digest = text.partition(":")
        if digest == filters and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise errors.InvalidParameter(
        "cursor", "cursor is not one this query's pages gave", valid="a next_cursor of this query"
    )
