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


@dataclass
class Bucket:
    """One bucket's candles and what they answer for: ``covered`` for good (closed history,
    gaps included), ``open`` only while the entry is fresh (candles that may still change,
    and ``quiet`` ranges the exchange sent nothing for, with nothing after them yet)."""

    rows: dict[int, Candle]
    covered: list[Interval]
    open: Interval | None
    quiet: list[Interval]
    entry: Entry | None

    @classmethod
    def load(cls, cached: Cached | None) -> Bucket:
        if cached is None:
            return cls(rows={}, covered=[], open=None, quiet=[], entry=None)
        data = cached.payload
        rows = {int(row[0]): [int(row[0]), *row[1:6]] for row in data["candles"]}
        covered = [(int(a), int(b)) for a, b in data["covered"]]
        open_ = (int(data["open"][0]), int(data["open"][1])) if data.get("open") else None
        quiet = [(int(a), int(b)) for a, b in data.get("quiet") or ([open_] if open_ else [])]
        return cls(rows=rows, covered=covered, open=open_, quiet=quiet, entry=cached.entry)

    def _live(self, now: int | None) -> bool:
        return (
            self.open is not None
            and self.entry is not None
            and (now is None or self.entry.is_fresh(now))
        )

    def usable(self, now: int) -> list[Interval]:
        """What this bucket answers for now (nothing there needs fetching)."""
        return [*self.covered, self.open] if self._live(now) and self.open else list(self.covered)

    def usable_on_error(self) -> list[Interval]:
        """What it answers for when the exchange fails: its open part however old."""
        return [*self.covered, self.open] if self._live(None) and self.open else list(self.covered)

    def answered(self, now: int) -> list[Interval]:
        """Where the exchange has said what it has: usable, less the quiet ranges (nothing
        came after them, so they are no gap the exchange has vouched for)."""
        if not self._live(now) or self.open is None:
            return list(self.covered)
        return merge([*self.covered, *(iv for iv in subtract(self.open, self.quiet))])

    def absorb(
        self,
        rows: list[Candle],
        firm: list[Interval],
        tentative: list[Interval],
        provisional_from: int,
    ) -> None:
        """Take freshly fetched ``rows``, answering for ``firm`` and ``tentative`` ranges.

        Candles from ``provisional_from`` on may still change, and tentative ranges may
        still fill: both are kept as provisional (``open``, the tentative ones ``quiet``),
        valid only while the bucket entry is fresh. The rest of a firm range is closed
        history, kept for good. The provisional candles held before are dropped: whatever of
        them an answer needed was fetched again.
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
        self.quiet = merge(tentative)
        self.covered = merge([*self.covered, *closed])

    def payload(self) -> dict[str, Any]:
        return {
            "candles": [self.rows[ts] for ts in sorted(self.rows)],
            "covered": [list(iv) for iv in self.covered],
            "open": list(self.open) if self.open else None,
            "quiet": [list(iv) for iv in self.quiet],
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
