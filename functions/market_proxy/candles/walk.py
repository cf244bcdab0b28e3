"""Paging through a range of history: which requests to make, and what each answer proves.

One mechanism for every exchange, steered by its :class:`~market_proxy.exchanges.paging.Paging`:

- A page is asked for a window ``[since, since + n·tf)`` of at most a page of candles, with
  ``until`` at the window's end where ccxt maps it (then the page speaks for exactly that
  window, however the exchange orders or bounds its answers).
- An empty answer says only that its window is empty. A non-empty answer to a request ccxt
  could not bound speaks up to its last candle; the rest of its window is asked again.
- Where ccxt sends ``since`` only as the day (the hour) it falls in, the answer is that
  day's candles cut at ``since`` and the limit: fewer than asked speak up to the day's end,
  and an answer never speaks past it (the next day is another file).
- Where ccxt does not send ``since`` but maps ``until``, it pages backward from ``until``:
  windows are asked as above, by their end, and each answer speaks for its window.
- Where the exchange takes neither (latest candles only), one request is all it takes:
  before its first candle the exchange keeps nothing.
- Before the market's listing time (ccxt's ``created``) nothing is asked: nothing exists.

Walking stops at the range's end. What the walk vouched for is then *firm* where a candle
came after it (a gap in the exchange's data, or its history limit) and *tentative* where
nothing did (a candle not yet published, a quiet market, an exchange that sent nothing at
all): only firm ranges are ever reported as gaps, and tentative ones are asked again soon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from market_proxy.exchanges.paging import Paging
from market_proxy.intervals import Interval, clip, merge

# One page: (since, limit, until or None) -> rows ``[timestamp, o, h, l, c, v]``, ascending.
_DAWN, _NEVER = 0, 2**62
PageFetch = Callable[[int | None, int, int | None], Awaitable[list[list[float]]]]


@dataclass(slots=True)
class Walked:
    """Candles fetched in a range, and the ranges the exchange answered for."""

    rows: list[list[float]] = field(default_factory=list)
    firm: list[Interval] = field(default_factory=list)
    tentative: list[Interval] = field(default_factory=list)
    pages: int = 0
    cut_short: bool = False  # out of time before the ranges' end: the rest is not vouched


async def walk(
    fetch: PageFetch,
    paging: Paging,
    ranges: list[Interval],
    *,
    step_ms: int,
    listed_ms: int | None = None,
    enough: int | None = None,
    in_time: Callable[[], bool] = lambda: True,
) -> Walked:
    """Every candle the exchange serves in ``ranges`` (ascending, disjoint), in the fewest
    pages its paging allows, with what it vouched for.

    ``step_ms`` sizes windows: a page of n candles spans at most n steps (the timeframe, or
    its shortest candle where the calendar varies: a week, a 28-day month). With ``enough``,
    walking stops once that many candles are in hand (the first ones from a range's start).
    Once ``in_time()`` is false no further page is asked for: the walk is ``cut_short``,
    with what it fetched and vouched for so far.
    """
    walked = Walked()
    vouched: list[Interval] = []
    last_seen: int | None = None
    for start, end in ranges:
        if walked.cut_short:
            break
        cursor = start
        if listed_ms is not None and listed_ms > cursor:
            first = min(end, -(-listed_ms // step_ms) * step_ms)
            walked.firm.append((cursor, first))  # the exchange's own word: not listed yet
            cursor = first
        if cursor >= end:
            continue
        if not paging.follows_since and not paging.bounded:
            rows = await fetch(None, paging.page, None)
            walked.pages += 1
            last_seen = _latest(last_seen, rows)
            walked.rows.extend(r for r in rows if start <= r[0] < end)
            if rows:
                vouched.append((cursor, end))  # before its latest page: its history limit
            continue
        while cursor < end:
            if walked.pages and not in_time():
                walked.cut_short = True
                break
            want = min(paging.page, -(-(end - cursor) // step_ms))
            window_end = cursor + want * step_ms
            rows = await fetch(cursor, want, window_end - 1 if paging.bounded else None)
            walked.pages += 1
            last_seen = _latest(last_seen, rows)
            walked.rows.extend(r for r in rows if cursor <= r[0] < end)
            grain = paging.since_grain_ms
            if grain is not None and len(rows) < want:
                answered = min(window_end, (cursor // grain + 1) * grain)
            elif not rows or paging.bounded:
                answered = window_end
            else:
                answered = max(int(rows[-1][0]) + step_ms, cursor + step_ms)
            answered = min(answered, end)
            vouched.append((cursor, answered))
            cursor = answered
            if enough is not None and len(walked.rows) >= enough:
                break
    # A range the exchange answered for is a gap in its data up to its last candle seen;
    # past that, nothing has come after it (yet).
    boundary = _DAWN if last_seen is None else last_seen + step_ms
    walked.firm = merge([*walked.firm, *clip(vouched, (_DAWN, boundary))])
    walked.tentative = clip(vouched, (boundary, _NEVER))
    walked.rows.sort(key=lambda row: row[0])
    return walked


def _latest(seen: int | None, rows: list[list[float]]) -> int | None:
    """The later of ``seen`` and the newest candle in ``rows``."""
    if not rows:
        return seen
    newest = int(max(row[0] for row in rows))
    return newest if seen is None else max(seen, newest)
