"""Candle frames: where each exchange's candles of a timeframe open, and how long they last.

A :class:`Frame` is one timeframe on one exchange's calendar: either a fixed length on a grid
anchored at some instant (minutes and hours from the epoch, weeks from a Monday), or calendar
months (months from the 1st, quarters from January). Both may be shifted to a local midnight:
OKX's non-"utc" bars open at midnight Hong Kong time (UTC+8), as its "Get candlesticks" page
says ("Hong Kong time opening price k-line: [6H/12H/1D/1W/1M/3M]").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_MS = 4 * DAY_MS  # the epoch fell on a Thursday: the first Monday after it
HONG_KONG_MS = 8 * HOUR_MS


@dataclass(frozen=True, slots=True)
class Frame:
    """One timeframe's grid. ``step_ms`` for fixed lengths, else ``months`` (1 or 3)."""

    step_ms: int = 0
    months: int = 0
    anchor_ms: int = 0  # fixed grids: an instant where a candle opens (in local time)
    shift_ms: int = 0  # local time minus UTC, where candles open at local midnights

    @classmethod
    def fixed(cls, step_ms: int, *, anchor_ms: int = 0, shift_ms: int = 0) -> Frame:
        return cls(step_ms=step_ms, anchor_ms=anchor_ms, shift_ms=shift_ms)

    @classmethod
    def weeks(cls, *, shift_ms: int = 0) -> Frame:
        """Weeks opening on Monday 00:00 (local)."""
        return cls(step_ms=WEEK_MS, anchor_ms=MONDAY_MS, shift_ms=shift_ms)

    @classmethod
    def calendar_months(cls, months: int = 1, *, shift_ms: int = 0) -> Frame:
        """Months opening on the 1st 00:00 (local); ``months=3`` for quarters from January."""
        return cls(months=months, shift_ms=shift_ms)

    @property
    def nominal_ms(self) -> int:
        """A typical length (months as 30 days), for sizing searches, never for the grid."""
        return self.step_ms or self.months * 30 * DAY_MS

    def floor(self, ts_ms: int) -> int:
        """The open time of the candle that holds ``ts_ms``."""
        local = ts_ms + self.shift_ms
        if self.step_ms:
            return (
                (local - self.anchor_ms) // self.step_ms * self.step_ms
                + self.anchor_ms
                - (self.shift_ms)
            )
        day = datetime.fromtimestamp(local / 1000, UTC)
        month = (day.month - 1) // self.months * self.months + 1
        return _ms(datetime(day.year, month, 1, tzinfo=UTC)) - self.shift_ms

    def ceil(self, ts_ms: int) -> int:
        """The first open time at or after ``ts_ms``."""
        first = self.floor(ts_ms)
        return first if first == ts_ms else self.next(first)

    def next(self, open_ms: int) -> int:
        if self.step_ms:
            return open_ms + self.step_ms
        local = datetime.fromtimestamp((open_ms + self.shift_ms) / 1000, UTC)
        index = local.month - 1 + self.months
        return _ms(datetime(local.year + index // 12, index % 12 + 1, 1, tzinfo=UTC)) - (
            self.shift_ms
        )

    def previous(self, open_ms: int) -> int:
        if self.step_ms:
            return open_ms - self.step_ms
        return self.floor(open_ms - 1)

    def back(self, open_ms: int, steps: int) -> int:
        """The open time ``steps`` candles before ``open_ms``."""
        if self.step_ms:
            return open_ms - steps * self.step_ms
        for _ in range(steps):
            open_ms = self.previous(open_ms)
        return open_ms

    def length(self, open_ms: int) -> int:
        return self.next(open_ms) - open_ms

    def opens(self, start_ms: int, stop_ms: int) -> list[int]:
        """Open times in [start_ms, stop_ms), ascending."""
        found = []
        open_ms = self.ceil(start_ms)
        while open_ms < stop_ms:
            found.append(open_ms)
            open_ms = self.next(open_ms)
        return found


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
