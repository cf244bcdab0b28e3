"""The kinds of data kept per market (tickers, order books, trades, funding): for each, what
ccxt call fetches it, how it is shaped, and how long it stays fresh. Every kind goes through
the same engine, so each gets the cache, coalescing, stale answers and freshness alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy import normalize
from market_proxy.keys import Kind
from market_proxy.settings import DataPolicy, Settings

Fetch = Callable[[Any, str, Settings], Awaitable[Any]]  # (ccxt client, symbol, settings)
Shape = Callable[[str, Mapping[str, Any], Any, Settings], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Spec:
    kind: Kind
    capability: str  # the key of ccxt's ``has`` that says the exchange offers it
    policy: Callable[[Settings], DataPolicy]
    fetch: Fetch
    shape: Shape


async def _at_most(fetch: Callable[..., Awaitable[Any]], symbol: str, limit: int) -> Any:
    """``fetch(symbol, limit=limit)``, or with the exchange's own default where it refuses
    that limit: exchanges accept their own lists or ranges of depths and counts, which ccxt
    does not record (two requests then, once per refresh)."""
    from ccxt.base.errors import BadRequest

    try:
        return await fetch(symbol, limit=limit)
    except BadRequest:
        return await fetch(symbol)


async def _order_book(client: Any, symbol: str, settings: Settings) -> Any:
    return await _at_most(client.fetch_order_book, symbol, settings.orderbook_max_depth)


async def _trades(client: Any, symbol: str, settings: Settings) -> Any:
    return await _at_most(client.fetch_trades, symbol, settings.trades_max_limit)


TICKER = Spec(
    Kind.TICKER,
    "fetchTicker",
    lambda settings: settings.ticker_policy,
    lambda client, symbol, _settings: client.fetch_ticker(symbol),
    lambda exchange, market, raw, _settings: normalize.ticker(exchange, market, raw),
)
ORDERBOOK = Spec(
    Kind.ORDERBOOK,
    "fetchOrderBook",
    lambda settings: settings.orderbook_policy,
    _order_book,
    lambda exchange, market, raw, settings: normalize.order_book(
        exchange, market, raw, settings.orderbook_max_depth
    ),
)
TRADES = Spec(
    Kind.TRADES,
    "fetchTrades",
    lambda settings: settings.trades_policy,
    _trades,
    lambda exchange, market, raw, _settings: normalize.trades(exchange, market, raw),
)
FUNDING = Spec(
    Kind.FUNDING,
    "fetchFundingRate",
    lambda settings: settings.funding_policy,
    lambda client, symbol, _settings: client.fetch_funding_rate(symbol),
    lambda exchange, market, raw, _settings: normalize.funding(exchange, market, raw),
)
SPECS = {spec.kind: spec for spec in (TICKER, ORDERBOOK, TRADES, FUNDING)}
