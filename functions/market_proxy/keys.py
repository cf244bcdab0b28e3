"""Every key the cache table holds, built and parsed here and nowhere else.

A key is a value with names (the exchange, the canonical ccxt symbol, the timeframe…); its
``text`` is the table's partition key. Symbols never hold ``#`` (they are validated before
they reach a key), so the text splits back into its parts unambiguously.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

SEPARATOR = "#"
HOUR_MS = 3_600_000


class Kind(StrEnum):
    """The kinds of data kept per market, named as their keys begin."""

    TICKER = "ticker"
    ORDERBOOK = "orderbook"
    TRADES = "trades"
    FUNDING = "funding"


@dataclass(frozen=True, slots=True)
class MarketKey:
    """One kind of data of one market: ``ticker#binance#BTC/USDT``."""

    kind: Kind
    exchange: str
    symbol: str
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _join(self.kind, self.exchange, self.symbol))


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """The candles of one market in one timeframe: ``ohlcv#binance#BTC/USDT#1m``.

    Candles are stored under its buckets or queries; the series itself names what clients
    ask for (demand) and what the warmer keeps warm.
    """

    exchange: str
    symbol: str
    timeframe: str
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _join("ohlcv", self.exchange, self.symbol, self.timeframe))

    def bucket(self, start_ms: int) -> BucketKey:
        return BucketKey(self, start_ms)

    def query(self, since: int | None, until: int | None, limit: int | None) -> QueryKey:
        return QueryKey(self, since, until, limit)


@dataclass(frozen=True, slots=True)
class BucketKey:
    """The bucket of a series whose first candle opens at ``start``."""

    series: SeriesKey
    start: int
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _join(self.series.text, str(self.start)))


@dataclass(frozen=True, slots=True)
class QueryKey:
    """Candles of a calendar timeframe (weeks, months), kept per query as asked."""

    series: SeriesKey
    since: int | None
    until: int | None
    limit: int | None
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = (str(self.since), str(self.until), str(self.limit))
        object.__setattr__(self, "text", _join(self.series.text, "q", *parts))


@dataclass(frozen=True, slots=True)
class MarketsKey:
    """An exchange's markets snapshot: ``markets#binance``."""

    exchange: str
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _join("markets", self.exchange))


@dataclass(frozen=True, slots=True)
class TallyKey:
    """The hour's demand tally: ``demand#2026120114``."""

    hour_start_ms: int
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hour = time.strftime("%Y%m%d%H", time.gmtime(self.hour_start_ms / 1000))
        object.__setattr__(self, "text", _join("demand", hour))

    @classmethod
    def of(cls, now_ms: int) -> TallyKey:
        return cls(now_ms // HOUR_MS * HOUR_MS)

    def previous(self) -> TallyKey:
        return TallyKey(self.hour_start_ms - HOUR_MS)


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """One exchange's shared upstream budget (tokens, and pauses every container honours)."""

    exchange: str
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _join("budget", self.exchange))


Key = MarketKey | SeriesKey | BucketKey | QueryKey | MarketsKey | TallyKey | BudgetKey
# What a client asks for and the warmer keeps warm.
DemandKey = MarketKey | SeriesKey


def part_key(key: str, etag: str, index: int) -> str:
    """One part of a payload too large for one item, named after its version's ETag."""
    return _join(key, "part", etag, str(index))


def parse_demand(text: str) -> DemandKey | None:
    """The key ``text`` names, if it is one clients ask for (as tallied); else None."""
    kind, _, rest = text.partition(SEPARATOR)
    exchange, _, rest = rest.partition(SEPARATOR)
    if not exchange or not rest:
        return None
    if kind in _KINDS:
        return MarketKey(Kind(kind), exchange, rest)
    symbol, _, timeframe = rest.rpartition(SEPARATOR)
    if kind == "ohlcv" and symbol and timeframe:
        return SeriesKey(exchange, symbol, timeframe)
    return None


_KINDS = frozenset(kind.value for kind in Kind)


def _join(*parts: str) -> str:
    return SEPARATOR.join(parts)
