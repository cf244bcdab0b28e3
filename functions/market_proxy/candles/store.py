"""OHLCV history through the cache: closed candles fetched once, in fixed buckets.

A request reads its buckets (``buckets.py``) in one batch, fetches only the uncovered
ranges (``upstream.py``: paged as the exchange pages, in the fewest pages), and writes the
touched buckets back. Timeframes longer than a day are cached per query (``calendar.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.entry import Entry, Source
from market_proxy.cache.leases import Leases
from market_proxy.cache.shared import Tiers
from market_proxy.candles.buckets import (
    BUCKET_CANDLES,
    Bucket,
    fewest_pages,
    missing_ranges,
    select_rows,
    stale_covers,
)
from market_proxy.candles.calendar import CalendarCandles
from market_proxy.candles.query import BUCKETED_MAX_MS, CandleQuery
from market_proxy.candles.report import assembled, report
from market_proxy.candles.upstream import CandleSource, too_long
from market_proxy.candles.walk import Walked
from market_proxy.exchanges.gateway import ExchangeGateway
from market_proxy.exchanges.venue import Venue
from market_proxy.intervals import Interval, clip
from market_proxy.keys import BucketKey, SeriesKey
from market_proxy.settings import DataPolicy, Settings


class CandleStore:
    def __init__(
        self,
        settings: Settings,
        cache: ReadThrough,
        tiers: Tiers,
        leases: Leases,
        gateway: ExchangeGateway,
        clock: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._tiers = tiers
        self._leases = leases
        self._source = CandleSource(gateway, walk_seconds=settings.ohlcv_walk_seconds)
        self._calendar = CalendarCandles(settings, cache, self._source, clock)
        self._flights: dict[tuple[Any, ...], asyncio.Task[tuple[dict[str, Entry], Source]]] = {}

    async def candles(self, venue: Venue, market: Mapping[str, Any], query: CandleQuery) -> Answer:
        """The candles of ``query`` with a report of the range and of the exchange's gaps.

        Cost upstream: nothing for ranges already covered; otherwise, per uncovered range,
        the fewest pages the exchange's paging allows (:meth:`CandleSource.fetch`). A
        failure upstream is raised unless only the open candle was missing and a recent
        copy of it may be served stale.
        """
        if query.tf_ms > BUCKETED_MAX_MS:
            return await self._calendar.candles(venue, market, query)
        symbol = market["symbol"]
        series = SeriesKey(venue.id, symbol, query.timeframe)
        span = BUCKET_CANDLES * query.tf_ms
        starts = range(query.start // span * span, query.end, span)
        bucket_keys = {key.text: key for key in map(series.bucket, starts)}
        held = await self._tiers.peek_many(list(bucket_keys))
        now = self._clock()
        open_start = now // query.tf_ms * query.tf_ms
        provisional_from = self._provisional_from(now, query.tf_ms)

        buckets = {key: Bucket.load(held.get(key)) for key in bucket_keys}
        answered = [iv for b in buckets.values() for iv in b.answered(now)]
        missing = missing_ranges(buckets, query, now)
        source: Source = "l2" if any(c.source == "l2" for c in held.values()) else "l1"
        stale_reason = None
        if missing:
            refill = _Refill(
                venue, market, query, bucket_keys, span, buckets, missing, provisional_from
            )
            try:
                written, source = await self._refilled(refill)
            except errors.ProxyError as exc:
                if not exc.retryable or not stale_covers(buckets, missing, now, self._settings):
                    raise
                answered = [iv for b in buckets.values() for iv in b.usable_on_error()]
                source, stale_reason = "stale", exc.code
            else:
                for key, entry in written.items():
                    buckets[key] = Bucket.load(entry.served(source, self._clock()))
                answered = [iv for b in buckets.values() for iv in b.answered(self._clock())]

        rows = select_rows(buckets.values(), query.start, query.end)
        is_open = bool(rows) and int(rows[-1][0]) >= open_start
        # A range asked of the exchange and not kept (it said nothing of it for good, e.g.
        # sent no candles at all) is fresh no longer than an open candle, like the present.
        kept_nothing = bool(missing) and any(b.entry is None for b in buckets.values())
        payload = report(venue, market, query, rows, answered=answered, open_candle=is_open)
        return assembled(
            ((b.entry.lifetime, b.open is not None) for b in buckets.values() if b.entry),
            payload,
            source,
            stale_reason,
            self._settings,
            self._clock(),
            reaches_present=query.end > provisional_from or kept_nothing,
        )

    def _provisional_from(self, now: int, tf_ms: int) -> int:
        """Open time of the oldest candle that may still change: the open one, and any that
        closed less than ``OHLCV_SETTLE_SECONDS`` ago (an exchange may amend a candle just
        after its close, and clocks differ)."""
        settle_ms = round(self._settings.ohlcv_settle_seconds * 1000)
        return (now - settle_ms) // tf_ms * tf_ms

    async def _refilled(self, refill: _Refill) -> tuple[dict[str, Entry], Source]:
        """The buckets rewritten to fill ``refill.missing``, and where their candles came
        from. Concurrent requests with the same holes share one refill in this container."""
        flight_key: tuple[Any, ...] = (
            refill.venue.id,
            refill.market["symbol"],
            refill.query.timeframe,
            *refill.missing,
        )
        flight = self._flights.get(flight_key)
        if flight is None:
            flight = asyncio.create_task(self._refill(refill))
            self._flights[flight_key] = flight
            flight.add_done_callback(lambda _t: self._flights.pop(flight_key, None))
        return await asyncio.shield(flight)

    async def _refill(self, refill: _Refill) -> tuple[dict[str, Entry], Source]:
        """Fetch what is missing and write the touched buckets back, once.

        A refill that reaches the present takes the lease on the newest bucket first, so
        that containers asking for the latest candles at once make one set of calls: the
        others wait for its write (within ``LEASE_WAIT_SECONDS``) and fetch only what it
        left missing, if anything.
        """
        query, buckets, missing = refill.query, refill.buckets, refill.missing
        reaches_present = missing[-1][1] > refill.provisional_from
        lease_key = next(reversed(buckets)) if reaches_present else None
        leading = False
        written: dict[str, Entry] = {}
        if lease_key is not None:
            verdict = await self._leases.lead_or_wait(lease_key, buckets[lease_key].entry)
            theirs = verdict.known if verdict.outcome == "fresh" else None
            if theirs is None:
                leading = True
            else:
                buckets[lease_key] = Bucket.load(theirs.served("l2", self._clock()))
                written[lease_key] = theirs
                missing = missing_ranges(buckets, query, self._clock())
                if not missing:
                    return written, "l2"
        try:
            paging = await self._source.paging(refill.venue, refill.market, query.timeframe)
            fetched = await self._source.fetch(
                refill.venue,
                refill.market,
                query.timeframe,
                fewest_pages(missing, query.tf_ms, paging.page),
                step_ms=query.tf_ms,
            )
        except BaseException:
            if leading and lease_key is not None:
                await self._leases.release(lease_key)
            raise
        entries = await self._write_back(
            buckets, refill.keys, refill.span, fetched, refill.provisional_from
        )
        written.update((entry.key, entry) for entry in entries)
        if fetched.cut_short:
            raise too_long(refill.venue.id, fetched.pages)
        return written, "upstream"

    async def _write_back(
        self,
        buckets: dict[str, Bucket],
        keys: Mapping[str, BucketKey],
        span: int,
        fetched: Walked,
        provisional_from: int,
    ) -> list[Entry]:
        now = self._clock()
        changed = []
        for key, bucket in buckets.items():
            low = keys[key].start
            bounds = (low, low + span)
            firm, tentative = clip(fetched.firm, bounds), clip(fetched.tentative, bounds)
            if not firm and not tentative:
                continue
            rows = [row for row in fetched.rows if low <= row[0] < low + span]
            bucket.absorb(rows, firm, tentative, provisional_from)
            policy = self._policy(bucket)
            entry = Entry.create(key, bucket.payload(), policy, now)
            bucket.entry = entry
            changed.append(entry)
        await self._tiers.put_many(changed)
        return changed

    def _policy(self, bucket: Bucket) -> DataPolicy:
        if bucket.open is None:
            return self._settings.closed_candles_policy
        # Fresh only briefly for the open candle, but kept as long as the closed ones.
        return DataPolicy(
            fresh_s=self._settings.ohlcv_open_ttl_seconds,
            sie_s=self._settings.ohlcv_closed_ttl_seconds,
        )


@dataclass(frozen=True, slots=True)
class _Refill:
    """What one request needs fetched: its holes, and the buckets they fall in."""

    venue: Venue
    market: Mapping[str, Any]
    query: CandleQuery
    keys: Mapping[str, BucketKey]
    span: int
    buckets: dict[str, Bucket]
    missing: list[Interval]
    provisional_from: int
