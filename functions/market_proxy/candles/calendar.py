"""Candles of timeframes longer than a day, which open where each exchange's calendar says
(weeks from Monday or Thursday, months of 28 to 31 days): cached per query, as asked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from market_proxy.answers import Answer
from market_proxy.cache.engine import ReadThrough
from market_proxy.candles.query import CandleQuery
from market_proxy.candles.report import report
from market_proxy.candles.upstream import CandleSource, too_long
from market_proxy.exchanges.venue import Venue
from market_proxy.keys import SeriesKey
from market_proxy.settings import DataPolicy, Settings

_MONTH_MS = 30 * 86_400_000  # what ccxt counts a month as


class CalendarCandles:
    def __init__(
        self,
        settings: Settings,
        cache: ReadThrough,
        source: CandleSource,
        clock: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._source = source
        self._clock = clock

    async def candles(self, venue: Venue, market: Mapping[str, Any], query: CandleQuery) -> Answer:
        """The candles of ``query``: from ``since`` (the first ``limit``), or the last
        ``limit`` before ``until`` or now, or all between ``since`` and ``until``.

        Cost upstream: nothing while the query's answer is fresh; kept for good once every
        candle in it has closed and no more can come into it, whatever form the query took.
        Otherwise a few pages (:meth:`CandleSource.fetch`).
        """
        asked = query.asked
        key = SeriesKey(venue.id, market["symbol"], query.timeframe).query(
            asked["since"], asked["until"], asked["limit"]
        )
        everything = asked["since"] is not None and asked["until"] is not None
        take = None if everything and asked["limit"] is None else query.count
        longest = _longest(query.tf_ms)
        # From ``since``, or from far enough back to hold the last ``take`` before the end
        # even in months of 31 days.
        start = query.start if not query.latest else max(0, query.end - ((take or 0) + 2) * longest)

        async def fetch() -> list[list[Any]]:
            walked = await self._source.fetch(
                venue,
                market,
                query.timeframe,
                [(start, query.end)],
                step_ms=_shortest(query.tf_ms),
                listed=False,
                enough=None if query.latest else take,
            )
            if walked.cut_short:
                raise too_long(venue.id, walked.pages)
            rows = walked.rows
            if take is None:
                return rows
            return rows[:take] if not query.latest else rows[-take:]

        cached = await self._cache.get(key, lambda rows: self._policy(query, take, rows), fetch)
        rows = cached.payload
        now = self._clock()
        # The exchange always sends its open candle: the last one, if it can still be open.
        still_open = bool(rows) and asked["until"] is None and rows[-1][0] + longest > now
        payload = report(venue, market, query, rows, answered=None, open_candle=still_open)
        return Answer(payload, cached.freshness, cached.entry.etag)

    def _policy(self, query: CandleQuery, take: int | None, rows: list[list[Any]]) -> DataPolicy:
        """Closed is closed: kept for good once every candle has closed and no more can come
        into the answer (it holds all it asked for, or its range ended long enough ago)."""
        settle = round(self._settings.ohlcv_settle_seconds * 1000)
        longest = _longest(query.tf_ms)
        now = self._clock()
        last_close = (int(rows[-1][0]) if rows else query.start) + longest + settle
        complete = (take is not None and len(rows) >= take and not query.latest) or (
            query.end + longest + settle <= now
        )
        if last_close <= now and complete:
            return self._settings.closed_candles_policy
        return self._settings.open_candles_policy


def _longest(tf_ms: int) -> int:
    """The longest a candle of this timeframe can last: ccxt counts a month as 30 days; a
    calendar month has up to 31."""
    return tf_ms * 31 // 30 if tf_ms >= _MONTH_MS else tf_ms


def _shortest(tf_ms: int) -> int:
    """The shortest: a 28-day February for months."""
    return tf_ms * 28 // 30 if tf_ms >= _MONTH_MS else tf_ms
