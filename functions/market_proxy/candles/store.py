"""OHLCV history through the cache: closed candles fetched once, in fixed buckets.

A request reads its buckets (``buckets.py``) in one batch, fetches only the uncovered
ranges, paging through ccxt at the exchange's page size (the fewest pages), and writes the
touched buckets back. Timeframes longer than a day are cached per query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.entry import Entry, Freshness, Lifetime, Source
from market_proxy.cache.leases import Leases
from market_proxy.cache.shared import Tiers
from market_proxy.candles.buckets import (
    BUCKET_CANDLES,
    Bucket,
    Candle,
    Fetched,
    fewest_pages,
    missing_ranges,
    select_rows,
    stale_covers,
)
from market_proxy.candles.query import BUCKETED_MAX_MS, CandleQuery
from market_proxy.exchanges.gateway import ExchangeGateway, Venue, ohlcv_page_limit
from market_proxy.intervals import Interval, clip, merge, subtract
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
        self._cache = cache
        self._tiers = tiers
        self._leases = leases
        self._gateway = gateway
        self._flights: dict[tuple[Any, ...], asyncio.Task[tuple[dict[str, Entry], Source]]] = {}

    async def candles(self, venue: Venue, market: Mapping[str, Any], query: CandleQuery) -> Answer:
        """The candles of ``query`` with a report of the range and of the exchange's gaps.

        Cost upstream: nothing for ranges already covered; otherwise, per uncovered range,
        ceil(candles / page size) requests. A failure upstream is raised unless only the open
        candle was missing and a recent copy of it may be served stale.
        """
        if query.tf_ms > BUCKETED_MAX_MS:
            return await self._per_query(venue, market, query)
        symbol = market["symbol"]
        series = SeriesKey(venue.id, symbol, query.timeframe)
        span = BUCKET_CANDLES * query.tf_ms
        starts = range(query.start // span * span, query.end, span)
        bucket_keys = {key.text: key for key in map(series.bucket, starts)}
        keys = list(bucket_keys)
        held = await self._tiers.peek_many(keys)
        now = self._clock()
        open_start = now // query.tf_ms * query.tf_ms
        provisional_from = self._provisional_from(now, query.tf_ms)

        buckets = {key: Bucket.load(held.get(key)) for key in keys}
        covered = [iv for b in buckets.values() for iv in b.usable(now)]
        missing = missing_ranges(buckets, query, now)
        source: Source = _weakest(held.get(k) for k in keys) if keys else "l1"
        stale_reason = None
        if missing:
            refill = _Refill(
                venue, symbol, query, bucket_keys, span, buckets, missing, provisional_from
            )
            try:
                written, source = await self._refilled(refill)
            except errors.ProxyError as exc:
                if not exc.retryable or not stale_covers(buckets, missing, now, self._settings):
                    raise
                covered = [iv for b in buckets.values() for iv in b.usable_on_error(now)]
                source, stale_reason = "stale", exc.code
            else:
                for key, entry in written.items():
                    buckets[key] = Bucket.load(entry.served(source, self._clock()))
                covered = [iv for b in buckets.values() for iv in b.usable(self._clock())]

        rows = select_rows(buckets.values(), query.start, query.end)
        payload = _report(venue, market, query, rows, covered, open_start)
        return _answer(
            buckets.values(),
            payload,
            source,
            stale_reason,
            self._settings,
            self._clock(),
            reaches_present=query.end > provisional_from,
        )

    def _provisional_from(self, now: int, tf_ms: int) -> int:
        """Open time of the oldest candle that may still change: the open one, and any that
        closed less than ``OHLCV_SETTLE_SECONDS`` ago (an exchange may amend a candle just
        after its close, and clocks differ)."""
        return (now - self._settle_ms) // tf_ms * tf_ms

    async def _refilled(self, refill: _Refill) -> tuple[dict[str, Entry], Source]:
        """The buckets rewritten to fill ``refill.missing``, and where their candles came
        from. Concurrent requests with the same holes share one refill in this container."""
        flight_key = (refill.venue.id, refill.symbol, refill.query.timeframe, *refill.missing)
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
            fetched = await self._page_all(
                refill.venue, refill.symbol, query.tf_ms, query.timeframe, missing
            )
        except BaseException:
            if leading and lease_key is not None:
                await self._leases.release(lease_key)
            raise
        entries = await self._write_back(
            buckets, refill.keys, refill.span, fetched, refill.provisional_from
        )
        written.update((entry.key, entry) for entry in entries)
        return written, "upstream"

    async def _page_all(
        self, venue: Venue, symbol: str, tf_ms: int, timeframe: str, missing: Sequence[Interval]
    ) -> Fetched:
        """Every candle in ``missing``, paged at the exchange's page size, and what the
        exchange vouched for: a range with no candle is a gap in its data only when it sent
        candles after it; a range it sent nothing for, nor anything after, may yet fill."""
        page = ohlcv_page_limit(venue.client)
        fetched = Fetched(rows=[], firm=[], tentative=[])
        for start, end in fewest_pages(missing, tf_ms, page):
            cursor = start
            while cursor < end:
                want = min(page, (end - cursor) // tf_ms)
                raw = await self._page(venue, symbol, timeframe, cursor, want)
                batch = [row for row in raw if cursor <= row[0] < end]
                fetched.rows.extend(batch)
                if batch:
                    cursor = int(batch[-1][0]) + tf_ms
                if any(row[0] >= end for row in raw):
                    cursor = end  # the exchange has candles after the range: the rest is a gap
                elif not batch:
                    break  # nothing from the cursor on, yet
            if cursor > start:
                fetched.firm.append((start, cursor))
            if cursor < end:
                fetched.tentative.append((cursor, end))
        return fetched

    async def _write_back(
        self,
        buckets: dict[str, Bucket],
        keys: Mapping[str, BucketKey],
        span: int,
        fetched: Fetched,
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

    async def _per_query(
        self, venue: Venue, market: Mapping[str, Any], query: CandleQuery
    ) -> Answer:
        """Candles of a timeframe longer than a day, cached per query: they open where the
        exchange's calendar says, so the range is the client's own and the exchange decides
        which candles fall in it. Kept for good once every candle in it has closed."""
        symbol = market["symbol"]
        asked = query.asked
        key = SeriesKey(venue.id, symbol, query.timeframe).query(
            asked["since"], asked["until"], asked["limit"]
        )
        everything = asked["since"] is not None and asked["until"] is not None
        take = None if everything and asked["limit"] is None else query.count
        # Paged forward from ``since``, or from far enough back to hold the last ``take``
        # before the end even in months of 31 days.
        reach = (take or 0) + 2
        since = query.start if not query.latest else max(0, query.end - reach * _longest(query))

        async def fetch() -> list[Candle]:
            rows = await self._page_forward(venue, symbol, query, since, take)
            if take is None:
                return rows
            return rows[:take] if not query.latest else rows[-take:]

        closed = query.end + _longest(query) + self._settle_ms <= self._clock()
        settings = self._settings
        policy = settings.closed_candles_policy if closed else settings.open_candles_policy
        cached = await self._cache.get(key, policy, fetch)
        rows = cached.payload
        now = self._clock()
        # The exchange always sends its open candle: the last one, if it can still be open.
        still_open = bool(rows) and asked["until"] is None and rows[-1][0] + _longest(query) > now
        payload = _report(venue, market, query, rows, [], None, open_candle=still_open)
        return Answer(payload, cached.freshness, cached.entry.etag)

    async def _page_forward(
        self, venue: Venue, symbol: str, query: CandleQuery, since: int, take: int | None
    ) -> list[Candle]:
        """Candles opening from ``since`` to the query's end, page after page, until there
        are none left or (from ``since``) ``take`` of them."""
        page = ohlcv_page_limit(venue.client)
        rows: list[Candle] = []
        cursor = since
        # Bounded: each page moves the cursor past at least one candle.
        for _ in range(-(-max(take or query.count, 1) // page) + 2):
            raw = await self._page(venue, symbol, query.timeframe, cursor, page)
            batch = [row for row in raw if cursor <= row[0] < query.end]
            rows.extend(batch)
            if not batch or len(raw) > len(batch) or int(batch[-1][0]) + 1 >= query.end:
                break
            if not query.latest and take is not None and len(rows) >= take:
                break
            cursor = int(batch[-1][0]) + 1
        return rows

    async def _page(
        self, venue: Venue, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[Candle]:
        """One page of candles from the exchange, checked."""
        fetch = partial(venue.client.fetch_ohlcv, symbol, timeframe, since, limit)
        return _checked(venue.id, await self._gateway.call(venue.id, "ohlcv", fetch))

    @property
    def _settle_ms(self) -> int:
        return round(self._settings.ohlcv_settle_seconds * 1000)


def _longest(query: CandleQuery) -> int:
    """The longest a candle of the query's timeframe can last: ccxt counts a month as 30
    days; a calendar month has up to 31."""
    return query.tf_ms * 31 // 30


def _checked(exchange_id: str, rows: Any) -> list[Candle]:
    """Candles as ``[timestamp, open, high, low, close, volume]`` numbers, or a bad response."""
    if not isinstance(rows, list) or not all(
        isinstance(row, list)
        and len(row) >= 6
        and all(isinstance(v, int | float) for v in row[:5])
        and isinstance(row[5], int | float | None)
        for row in rows
    ):
        raise errors.UpstreamBadResponse(f"{exchange_id}: candles that could not be read")
    return [[*row[:5], row[5] if row[5] is not None else 0.0] for row in rows]


@dataclass(frozen=True, slots=True)
class _Refill:
    """What one request needs fetched: its holes, and the buckets they fall in."""

    venue: Venue
    symbol: str
    query: CandleQuery
    keys: Mapping[str, BucketKey]
    span: int
    buckets: dict[str, Bucket]
    missing: list[Interval]
    provisional_from: int


def _report(
    venue: Venue,
    market: Mapping[str, Any],
    query: CandleQuery,
    rows: list[Candle],
    covered: list[Interval],
    open_start: int | None,
    *,
    open_candle: bool | None = None,
) -> dict[str, Any]:
    """The answer's body. Gaps are reported where candles sit on a grid (``open_start``
    given): a candle of it that is missing, in a range the exchange answered for."""
    tf = query.tf_ms
    gaps: list[Interval] = []
    if open_start is not None and len(rows) < query.count:
        present = {int(row[0]) for row in rows}
        for ts in range(query.start, query.end, tf):
            if ts not in present and not subtract((ts, ts + tf), covered):
                gaps.append((ts, ts + tf))
    return {
        "exchange": venue.id,
        "symbol": market["symbol"],
        "market_id": market["id"],
        "timeframe": query.timeframe,
        "requested": {
            **query.asked,
            "start": query.start,
            "end": query.end,
            "candles": query.count,
        },
        "returned": {
            "start": int(rows[0][0]) if rows else None,
            "end": int(rows[-1][0]) + tf if rows else None,
            "candles": len(rows),
            "open_candle": (
                open_candle
                if open_candle is not None
                else bool(rows) and open_start is not None and int(rows[-1][0]) >= open_start
            ),
        },
        "gaps": [list(gap) for gap in merge(gaps)],
        "columns": ["timestamp", "open", "high", "low", "close", "volume"],
        "candles": rows,
    }


def _weakest(held: Any) -> Source:
    sources = {c.source for c in held if c is not None}
    return "l2" if "l2" in sources else "l1"


def _answer(
    buckets: Any,
    payload: dict[str, Any],
    source: Source,
    stale_reason: str | None,
    settings: Settings,
    now: int,
    *,
    reaches_present: bool,
) -> Answer:
    """One answer assembled from several buckets: fetched when its newest bucket was; fresh
    until the first bucket holding provisional candles goes stale, and no longer than
    ``OHLCV_OPEN_TTL_SECONDS`` from that fetch when the range reaches the present (whether
    or not the exchange has a candle there yet)."""
    used = [b for b in buckets if b.entry is not None]
    fetched = max((b.entry.lifetime.fetched_at for b in used), default=now)
    limits = [b.entry.lifetime.fresh_until for b in used if b.open is not None]
    if reaches_present:
        limits.append(fetched + round(settings.ohlcv_open_ttl_seconds * 1000))
    fresh_until = min(limits, default=now + round(settings.ohlcv_closed_ttl_seconds * 1000))
    freshness = Freshness(Lifetime.fixed(fetched, fresh_until), source, now, stale_reason)
    return Answer.assembled(payload, freshness)
