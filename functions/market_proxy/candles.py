"""OHLCV history through the cache: closed candles fetched once, in fixed buckets.

A bucket holds up to :data:`BUCKET_CANDLES` candles of one exchange, symbol and timeframe,
and records which time ranges of it have been fetched (``covered``), so that a known gap in
the exchange's data is never asked for again. Closed candles never change, so covered ranges
of closed candles stay valid for the bucket's long life; the one candle still open when it was
fetched (``open``) is valid only while the bucket entry is fresh.

A request reads its buckets in one batch, fetches only the uncovered ranges, paging through
ccxt at the exchange's page size (the minimum number of pages for each range), and writes
the touched buckets back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

from market_proxy import errors
from market_proxy.cache.engine import CacheEngine, now_ms
from market_proxy.cache.entry import Cached, Entry, Source, digest, encode_json
from market_proxy.exchanges import ExchangeGateway, Venue
from market_proxy.intervals import Interval, clip, merge, subtract
from market_proxy.settings import DataPolicy, Settings

BUCKET_CANDLES = 1000
# Timeframes up to a day divide a UTC day, so their candles sit on multiples of their length
# since the epoch; longer ones (weeks start on Monday, months vary) are cached per query.
BUCKETED_MAX_MS = 86_400_000
Candle = list[float]


@dataclass(frozen=True, slots=True)
class CandleQuery:
    """A request made concrete: whole candles from ``start`` (inclusive) to ``end``."""

    timeframe: str
    tf_ms: int
    start: int
    end: int
    asked: dict[str, int | None]

    @property
    def count(self) -> int:
        return (self.end - self.start) // self.tf_ms


def plan(
    *,
    timeframe: str,
    tf_ms: int,
    since: int | None,
    until: int | None,
    limit: int | None,
    now: int,
    settings: Settings,
) -> CandleQuery:
    """Turn ``since``/``until``/``limit`` into a range, as a user of an exchange API expects.

    ``since`` alone or with ``limit``: the first candles from ``since``. ``until`` (exclusive)
    alone or with ``limit``: the last candles before it. Both: the range, at most ``limit``
    candles from its start. Neither: the latest ``limit`` candles, the open one included.
    Raises :class:`errors.InvalidParameter` for a range that is empty, in the future or
    larger than ``OHLCV_MAX_CANDLES``.
    """
    maximum = settings.ohlcv_max_candles
    if limit is not None and not 1 <= limit <= maximum:
        raise errors.InvalidParameter(
            "limit", f"limit must be 1 to {maximum}", valid=f"1..{maximum}"
        )
    horizon = (now // tf_ms + 1) * tf_ms  # end of the open candle
    if since is not None and since >= horizon:
        raise errors.InvalidParameter("since", "since is in the future")
    if since is not None and until is not None and until <= since:
        raise errors.InvalidParameter("until", "until must be later than since")

    if since is not None:
        start = _ceil(since, tf_ms)
        if until is not None:
            end = min(_ceil(until, tf_ms), horizon)
            if limit is not None:
                end = min(end, start + limit * tf_ms)
        else:
            end = min(start + (limit or settings.ohlcv_default_limit) * tf_ms, horizon)
    else:
        end = horizon if until is None else min(_ceil(until, tf_ms), horizon)
        start = end - (limit or settings.ohlcv_default_limit) * tf_ms
    if end <= start:
        raise errors.InvalidParameter("until", "the range holds no whole candle")
    if (end - start) // tf_ms > maximum:
        raise errors.InvalidParameter(
            "until",
            f"the range spans {(end - start) // tf_ms} candles; at most {maximum} per request",
            valid=f"at most {maximum} candles",
        )
    asked = {"since": since, "until": until, "limit": limit}
    return CandleQuery(timeframe=timeframe, tf_ms=tf_ms, start=start, end=end, asked=asked)


def _ceil(ts: int, step: int) -> int:
    return -(-ts // step) * step


class CandleStore:
    def __init__(
        self,
        settings: Settings,
        cache: CacheEngine,
        gateway: ExchangeGateway,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cache = cache
        self._gateway = gateway
        self._flights: dict[tuple[Any, ...], asyncio.Task[list[Candle]]] = {}

    async def candles(
        self, venue: Venue, market: Mapping[str, Any], query: CandleQuery
    ) -> tuple[dict[str, Any], Cached]:
        """The candles of ``query`` with a report of the range and of the exchange's gaps.

        Cost upstream: nothing for ranges already covered; otherwise, per uncovered range,
        ceil(candles / page size) requests. A failure upstream is raised unless only the open
        candle was missing and a recent copy of it may be served stale.
        """
        if query.tf_ms > BUCKETED_MAX_MS:
            return await self._per_query(venue, market, query)
        symbol = market["symbol"]
        prefix = f"ohlcv#{venue.id}#{symbol}#{query.timeframe}#"
        span = BUCKET_CANDLES * query.tf_ms
        starts = range(query.start // span * span, query.end, span)
        keys = [f"{prefix}{start}" for start in starts]
        held = await self._cache.peek_many(keys)
        now = self._clock()
        open_start = now // query.tf_ms * query.tf_ms

        buckets = {key: _Bucket.load(held.get(key)) for key in keys}
        covered = [iv for b in buckets.values() for iv in b.usable(now)]
        missing = subtract((query.start, query.end), covered)
        source: Source = _weakest(held.get(k) for k in keys) if keys else "l1"
        stale_reason = None
        if missing:
            try:
                fetched = await self._fetch(venue, symbol, query, missing)
            except errors.ProxyError as exc:
                if not exc.retryable or not _stale_covers(buckets, missing, now, self._settings):
                    raise
                covered = [iv for b in buckets.values() for iv in b.usable_on_error(now)]
                source, stale_reason = "stale", exc.code
            else:
                source = "upstream"
                await self._write_back(buckets, prefix, span, query, missing, fetched, open_start)
                covered = [iv for b in buckets.values() for iv in b.usable(self._clock())]

        rows = _select(buckets.values(), query.start, query.end)
        payload = _report(venue, market, query, rows, covered, open_start)
        freshness = _freshness(
            buckets.values(), payload, source, stale_reason, self._settings, self._clock()
        )
        return payload, freshness

    async def _fetch(
        self, venue: Venue, symbol: str, query: CandleQuery, missing: Sequence[Interval]
    ) -> list[Candle]:
        # Coalesced: concurrent requests with the same holes make one set of calls.
        key = (venue.id, symbol, query.timeframe, tuple(missing))
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(
                self._page_all(venue, symbol, query.tf_ms, query.timeframe, missing)
            )
            self._flights[key] = flight
            flight.add_done_callback(lambda _t: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    async def _page_all(
        self, venue: Venue, symbol: str, tf_ms: int, timeframe: str, missing: Sequence[Interval]
    ) -> list[Candle]:
        page = venue.ohlcv_page_limit
        rows: list[Candle] = []
        for start, end in missing:
            cursor = start
            while cursor < end:
                want = min(page, (end - cursor) // tf_ms)
                batch: list[Candle] = await self._gateway.call(
                    venue.id,
                    "ohlcv",
                    partial(venue.client.fetch_ohlcv, symbol, timeframe, cursor, want),
                )
                batch = [row for row in _checked(venue.id, batch) if cursor <= row[0] < end]
                if not batch:
                    break  # nothing more in this range: the rest is a gap in the exchange's data
                rows.extend(batch)
                cursor = int(batch[-1][0]) + tf_ms
        return rows

    async def _write_back(
        self,
        buckets: dict[str, _Bucket],
        prefix: str,
        span: int,
        query: CandleQuery,
        missing: Sequence[Interval],
        fetched: list[Candle],
        open_start: int,
    ) -> None:
        now = self._clock()
        changed = []
        for key, bucket in buckets.items():
            low = int(key[len(prefix) :])
            bounds = (low, low + span)
            newly = clip(missing, bounds)
            if not newly:
                continue
            rows = [row for row in fetched if low <= row[0] < low + span]
            bucket.absorb(rows, newly, open_start, query.tf_ms)
            policy = self._policy(bucket)
            entry = Entry.create(key, bucket.payload(), policy, now)
            bucket.entry = entry
            changed.append(entry)
        await self._cache.put_many(changed)

    def _policy(self, bucket: _Bucket) -> DataPolicy:
        if bucket.open is None:
            return self._settings.closed_candles_policy
        # Fresh only briefly for the open candle, but kept as long as the closed ones.
        return DataPolicy(
            fresh_s=self._settings.ohlcv_open_ttl_seconds,
            sie_s=self._settings.ohlcv_closed_ttl_seconds,
        )

    async def _per_query(
        self, venue: Venue, market: Mapping[str, Any], query: CandleQuery
    ) -> tuple[dict[str, Any], Cached]:
        symbol = market["symbol"]
        key = f"ohlcv#{venue.id}#{symbol}#{query.timeframe}#q#{query.start}#{query.end}"

        async def load() -> list[Candle]:
            rows = await venue.client.fetch_ohlcv(symbol, query.timeframe, query.start, query.count)
            return [row for row in _checked(venue.id, rows) if query.start <= row[0] < query.end]

        async def fetch() -> list[Candle]:
            return await self._gateway.call(venue.id, "ohlcv", load)

        cached = await self._cache.get(key, self._settings.open_candles_policy, fetch)
        rows = cached.payload
        covered = [(query.start, query.end)]
        payload = _report(venue, market, query, rows, covered, None)
        return payload, cached


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


@dataclass
class _Bucket:
    rows: dict[int, Candle]
    covered: list[Interval]
    open: Interval | None
    entry: Entry | None

    @classmethod
    def load(cls, cached: Cached | None) -> _Bucket:
        if cached is None:
            return cls(rows={}, covered=[], open=None, entry=None)
        data = cached.payload
        rows = {int(row[0]): row for row in data["candles"]}
        covered = [(int(a), int(b)) for a, b in data["covered"]]
        open_ = (int(data["open"][0]), int(data["open"][1])) if data.get("open") else None
        return cls(rows=rows, covered=covered, open=open_, entry=cached.entry)

    def usable(self, now: int) -> list[Interval]:
        if self.open is not None and self.entry is not None and self.entry.is_fresh(now):
            return [*self.covered, self.open]
        return list(self.covered)

    def usable_on_error(self, now: int) -> list[Interval]:
        if self.open is not None and self.entry is not None:
            return [*self.covered, self.open]
        return list(self.covered)

    def absorb(self, rows: list[Candle], fetched: list[Interval], open_start: int, tf: int) -> None:
        """Take freshly fetched ``rows`` covering ``fetched``.

        A range that reaches the present counts as covered only up to the last candle the
        exchange sent, so a closed candle it has not published yet is asked for again; the
        open candle is kept as provisional.
        """
        if self.open is not None:
            for ts in [ts for ts in self.rows if self.open[0] <= ts < self.open[1]]:
                del self.rows[ts]
            self.open = None
        for row in rows:
            self.rows[int(row[0])] = [float(v) for v in row[:6]]
        closed = []
        for start, end in fetched:
            closed_end = min(end, open_start)
            if end > open_start - tf:
                last = max((ts for ts in self.rows if start <= ts < end), default=None)
                closed_end = start if last is None else min(closed_end, last + tf)
            closed.append((start, closed_end))
            if end > open_start and open_start in self.rows:
                self.open = (open_start, open_start + tf)
        self.covered = merge([*self.covered, *closed])

    def payload(self) -> dict[str, Any]:
        return {
            "candles": [self.rows[ts] for ts in sorted(self.rows)],
            "covered": [list(iv) for iv in self.covered],
            "open": list(self.open) if self.open else None,
        }


def _stale_covers(
    buckets: Mapping[str, _Bucket], missing: Sequence[Interval], now: int, settings: Settings
) -> bool:
    """Whether a recent copy of the open candle fills everything that could not be fetched."""
    window_ms = round((settings.ohlcv_open_ttl_seconds + settings.ohlcv_sie_seconds) * 1000)
    recent = [
        b.open
        for b in buckets.values()
        if b.open is not None and b.entry is not None and now - b.entry.fetched_at < window_ms
    ]
    covered = [iv for b in buckets.values() for iv in b.covered] + recent
    return all(not subtract(iv, covered) for iv in missing)


def _select(buckets: Any, start: int, end: int) -> list[Candle]:
    rows = [row for b in buckets for ts, row in b.rows.items() if start <= ts < end]
    rows.sort(key=itemgetter(0))  # already in order but for a bucket just absorbed: cheap
    return rows


def _report(
    venue: Venue,
    market: Mapping[str, Any],
    query: CandleQuery,
    rows: list[Candle],
    covered: list[Interval],
    open_start: int | None,
) -> dict[str, Any]:
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
            "open_candle": bool(rows) and open_start is not None and int(rows[-1][0]) >= open_start,
        },
        "gaps": [list(gap) for gap in merge(gaps)],
        "columns": ["timestamp", "open", "high", "low", "close", "volume"],
        "candles": rows,
    }


def _weakest(held: Any) -> Source:
    sources = {c.source for c in held if c is not None}
    return "l2" if "l2" in sources else "l1"


def _freshness(
    buckets: Any,
    payload: dict[str, Any],
    source: Source,
    stale_reason: str | None,
    settings: Settings,
    now: int,
) -> Cached:
    """One freshness for an answer assembled from several buckets: as old as its oldest
    bucket, fresh until the first bucket holding an open candle goes stale."""
    now = now_ms()
    used = [b for b in buckets if b.entry is not None]
    fetched = min((b.entry.fetched_at for b in used), default=now)
    fresh_until = min(
        (b.entry.fresh_until for b in used if b.open is not None),
        default=now + round(settings.ohlcv_closed_ttl_seconds * 1000),
    )
    body = encode_json(payload)
    entry = Entry(
        key="answer",
        payload=payload,
        fetched_at=fetched,
        fresh_until=fresh_until,
        swr_until=fresh_until,
        sie_until=fresh_until,
        etag=digest(body),
        size=len(body),
    )
    return entry.served(source, now, stale_reason)
