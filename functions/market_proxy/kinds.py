"""The kinds of data kept per market (tickers, order books, trades, funding): for each, what
ccxt call fetches it, how it is shaped, and how long it stays fresh. Every kind goes through
the same engine, so each gets the cache, coalescing, stale answers and freshness alike."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy import errors, normalize
from market_proxy.exchanges.ccxt_internals import answer_seen, forget_answer
from market_proxy.exchanges.failures import from_ccxt
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


# Per client, what was asked of it with the limit each kind of market refused, and
# answered without: ``(call, market type, limit)``. ccxt records no lists of the depths and
# counts exchanges accept (its ``features`` hold none for order books or trades, and its
# code clamps a few and refuses others: Kucoin's books take 20 or 100 only), so they are
# learnt from the first refusal and kept as long as the client.
_REFUSED: weakref.WeakKeyDictionary[Any, set[tuple[str, str, int]]] = weakref.WeakKeyDictionary()


async def _at_most(client: Any, call: str, symbol: str, limit: int) -> Any:
    """``client.<call>(symbol, limit=limit)``, or with the exchange's own default where it
    refuses that limit, whatever the form of the refusal (a ``BadRequest``, ccxt's own
    ``ExchangeError``, a 400 that ccxt reads as unavailability). The refusal is remembered
    per kind of market: each refresh after it is one request, with the same answer (the
    exchange's default), instead of two."""
    fetch = getattr(client, call)
    market = client.market(symbol)
    learnt = _REFUSED.setdefault(client, set())
    asked = (call, str(market.get("type")), limit)
    if asked in learnt:
        return await fetch(symbol)
    try:
        return await fetch(symbol, limit=limit)
    except Exception as exc:
        if not _refusal(exc, client.id, call):
            raise
    forget_answer()  # what the gateway reads of a failure is the last request's
    answer = await fetch(symbol)
    learnt.add(asked)
    return answer


def _refusal(exc: Exception, exchange_id: str, call: str) -> bool:
    """Whether ``exc`` is the exchange (or ccxt for it) refusing the request as it was made,
    rather than failing, throttling or naming the market unknown: those would fail the
    request without the limit too."""
    seen = answer_seen()
    status = seen.status if seen is not None else None
    error = from_ccxt(exc, exchange_id, status=status, what=call)
    if isinstance(error, errors.RejectedByExchange | errors.NotSupported):
        return True
    if type(error) is errors.ProxyError:  # an error ccxt has no class for
        return True
    # ccxt reads a 400 whose code it does not know as the exchange being unavailable.
    return status in (400, 422) and error.code == errors.UpstreamUnavailable.code


async def _order_book(client: Any, symbol: str, settings: Settings) -> Any:
    return await _at_most(client, "fetch_order_book", symbol, settings.orderbook_max_depth)


async def _trades(client: Any, symbol: str, settings: Settings) -> Any:
    return await _at_most(client, "fetch_trades", symbol, settings.trades_max_limit)


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
