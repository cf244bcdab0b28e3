"""Buckets of closed candles: what one cache entry holds, and the arithmetic of what is
covered, provisional and missing.

A bucket holds up to :data:`BUCKET_CANDLES` candles of one exchange, symbol and timeframe,
and records which time ranges of it have been fetched (``covered``), so that a known gap in
the exchange's data is never asked for again. Closed candles never change, so covered ranges
stay valid for the bucket's long life; candles that may still change (``open``: the open one,
those that closed moments ago, ranges the exchange has sent nothing for yet) are valid only
while the bucket entry is fresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from market_proxy.cache.entry import Cached, Entry
from market_proxy.candles.query import CandleQuery
from market_proxy.intervals import Interval, clip, merge, subtract
from market_proxy.settings import Settings

BUCKET_CANDLES = 1000
# [open time (integer epoch ms), open, high, low, close, volume]
Candle = list[Any]


@dataclass(slots=True)
class Fetched:
    """Candles fetched, and the ranges they answer for: ``firm`` for good (candles, or gaps
    the exchange vouched for), ``tentative`` only briefly (nothing came, nor anything
    after: a candle not yet published, a quiet market)."""

    rows: list[Candle]
    firm: list[Interval]
    tentative: list[Interval]


@dataclass
class Bucket:
    rows: dict[int, Candle]
    covered: list[Interval]
    open: Interval | None
    entry: Entry | None

    @classmethod
    def load(cls, cached: Cached | None) -> Bucket:
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

    def absorb(
        self,
        rows: list[Candle],
        firm: list[Interval],
        tentative: list[Interval],
        provisional_from: int,
    ) -> None:
        """Take freshly fetched ``rows``, answering for ``firm`` and ``tentative`` ranges.

        Candles from ``provisional_from`` on may still change, and tentative ranges may
        still fill: both are kept as provisional (``open``), valid only while the bucket
        entry is fresh. The rest of a firm range is closed history, kept for good. The
        provisional candles held before are dropped: whatever of them an answer needed was
        fetched again.
        """
        if self.open is not None:
            for ts in [ts for ts in self.rows if self.open[0] <= ts < self.open[1]]:
                del self.rows[ts]
        for row in rows:
            self.rows[int(row[0])] = [int(row[0]), *(float(v) for v in row[1:6])]
        closed = [(start, min(end, provisional_from)) for start, end in firm]
        provisional = merge(
            [(max(start, provisional_from), end) for start, end in firm] + list(tentative)
        )
        self.open = (provisional[0][0], provisional[-1][1]) if provisional else None
        self.covered = merge([*self.covered, *closed])

    def payload(self) -> dict[str, Any]:
        return {
            "candles": [self.rows[ts] for ts in sorted(self.rows)],
            "covered": [list(iv) for iv in self.covered],
            "open": list(self.open) if self.open else None,
        }


def missing_ranges(buckets: Mapping[str, Bucket], query: CandleQuery, now: int) -> list[Interval]:
    """What ``query`` needs fetched: whatever its buckets do not cover now and, if anything,
    the provisional candles it shows: a bucket written back drops those it was not given
    again (they adjoin what is missing, so they cost no extra page)."""
    wanted = (query.start, query.end)
    missing = subtract(wanted, [iv for b in buckets.values() for iv in b.usable(now)])
    if missing:
        provisional = [b.open for b in buckets.values() if b.open is not None]
        missing = merge([*missing, *clip(provisional, wanted)])
    return missing


def fewest_pages(missing: Sequence[Interval], tf_ms: int, page: int) -> list[Interval]:
    """``missing`` with neighbours joined wherever one run of pages across both (and what
    lies between) takes fewer requests than paging each on its own."""

    def pages(interval: Interval) -> int:
        return -(-(interval[1] - interval[0]) // tf_ms // page)

    runs: list[Interval] = []
    for interval in merge(missing):
        if runs:
            joined = (runs[-1][0], interval[1])
            if pages(joined) < pages(runs[-1]) + pages(interval):
                runs[-1] = joined
                continue
        runs.append(interval)
    return runs


def stale_covers(
    buckets: Mapping[str, Bucket], missing: Sequence[Interval], now: int, settings: Settings
) -> bool:
    """Whether a recent copy of the open candle fills everything that could not be fetched."""
    window_ms = round((settings.ohlcv_open_ttl_seconds + settings.ohlcv_sie_seconds) * 1000)
    recent = [
        b.open
        for b in buckets.values()
        if b.open is not None
        and b.entry is not None
        and now - b.entry.lifetime.fetched_at < window_ms
    ]
    covered = [iv for b in buckets.values() for iv in b.covered] + recent
    return all(not subtract(iv, covered) for iv in missing)


def select_rows(buckets: Any, start: int, end: int) -> list[Candle]:
    rows = [row for b in buckets for ts, row in b.rows.items() if start <= ts < end]
    rows.sort(key=itemgetter(0))  # already in order but for a bucket just absorbed: cheap
    return rows
