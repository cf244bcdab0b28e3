"""Order books, public trades and funding, the same for every wire format.

All deterministic: a book is laid out around the market's ticker (its best bid and ask are
the ticker's, so ``set_ticker`` and the demo walk move it), trade ``k`` of a market happens
once in each ``TRADE_EVERY_MS`` slot at a time, price, size and side fixed by (seed, market,
k), and a perpetual's funding rate is fixed by the funding period it settles at. Trades
follow the market's history: none before its listing, in a gap, or after now.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.exchange_sim.catalog import Market, unit
from infra.exchange_sim.frames import HOUR_MS
from infra.exchange_sim.market_data import MarketBook

TRADE_EVERY_MS = 2_000
FUNDING_EVERY_MS = 8 * HOUR_MS


@dataclass(frozen=True, slots=True)
class Trade:
    id: int  # trade k of its market: ids rise with time
    ts: int
    price: float
    amount: float
    side: str  # the taker's side, "buy" or "sell"


@dataclass(frozen=True, slots=True)
class Funding:
    rate: float  # for the period that settles at next_ms
    next_ms: int
    interval_ms: int
    mark: float
    index: float
    timestamp: int


def depth(book: MarketBook, market: Market, levels: int) -> tuple[list[tuple[float, float]], ...]:
    """(bids, asks), best first, ``levels`` each: the ticker's bid and ask, then a level
    every 0.01% of the last price away from them, with sizes that never change."""
    state = book.ticker(market)
    step = state.last * 0.0001

    def side(name: str, best: float, direction: int) -> list[tuple[float, float]]:
        return [
            (
                round(best + direction * index * step, 8),
                round(0.01 + 4 * unit(book.seed, market.exchange, market.id, name, index), 6),
            )
            for index in range(levels)
        ]

    return side("bid", state.bid, -1), side("ask", state.ask, 1)


def trade(book: MarketBook, market: Market, k: int) -> Trade:
    def draw(name: str) -> float:
        return unit(book.seed, market.exchange, market.id, market.kind, k, name)

    ts = k * TRADE_EVERY_MS + int(draw("t") * TRADE_EVERY_MS)
    price = book.price_at(market, ts) * (1 + (draw("p") - 0.5) * 0.0004)
    return Trade(
        id=k,
        ts=ts,
        price=round(price, 8),
        amount=round(0.0005 + draw("a") * 0.5, 6),
        side="buy" if draw("s") < 0.5 else "sell",
    )


def _exists(book: MarketBook, market: Market, found: Trade, listed: int | None) -> bool:
    return (listed is None or found.ts >= listed) and not book.in_gap(market, found.ts)


def trades_from(
    book: MarketBook, market: Market, start_ms: int, *, until_ms: int | None, limit: int
) -> list[Trade]:
    """The oldest ``limit`` trades at or after ``start_ms`` (and at or before ``until_ms``,
    and now), ascending."""
    listed = book.listed_ms(market)
    last = min(book.now_ms(), until_ms if until_ms is not None else book.now_ms())
    k = max(start_ms, listed or start_ms) // TRADE_EVERY_MS
    found: list[Trade] = []
    while len(found) < limit and k * TRADE_EVERY_MS <= last:
        candidate = trade(book, market, k)
        if start_ms <= candidate.ts <= last and _exists(book, market, candidate, listed):
            found.append(candidate)
        k += 1
    return found


def trades_until(
    book: MarketBook, market: Market, until_ms: int | None, *, limit: int
) -> list[Trade]:
    """The newest ``limit`` trades at or before ``until_ms`` (default now), ascending."""
    listed = book.listed_ms(market)
    last = min(book.now_ms(), until_ms if until_ms is not None else book.now_ms())
    k = last // TRADE_EVERY_MS
    found: list[Trade] = []
    while len(found) < limit and (listed is None or (k + 1) * TRADE_EVERY_MS > listed) and k >= 0:
        candidate = trade(book, market, k)
        if candidate.ts <= last and _exists(book, market, candidate, listed):
            found.append(candidate)
        k -= 1
    return found[::-1]


def funding(book: MarketBook, market: Market) -> Funding:
    """The perpetual's funding now: settles every 8 hours (00:00, 08:00, 16:00 UTC); rate,
    mark and index may be set through ``set_ticker`` (``funding_rate``, ``mark``, ``index``)."""
    state = book.ticker(market)
    now = state.timestamp
    next_ms = (now // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS
    drawn = round(0.0001 * (unit(book.seed, market.exchange, market.id, next_ms) - 0.3), 8)
    return Funding(
        rate=state.extra.get("funding_rate", drawn),
        next_ms=next_ms,
        interval_ms=FUNDING_EVERY_MS,
        mark=state.extra.get("mark", round(state.last * 1.00002, 8)),
        index=state.extra.get("index", round(state.last * 0.99995, 8)),
        timestamp=now,
    )
