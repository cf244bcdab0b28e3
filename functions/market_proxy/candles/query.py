"""What a request for candles asks for, made concrete: which candles, from when to when."""

from __future__ import annotations

from dataclasses import dataclass

from market_proxy import errors
from market_proxy.settings import Settings

# Timeframes up to a day divide a UTC day, so their candles sit on multiples of their length
# since the epoch; longer ones (weeks start on Monday, months vary) are cached per query.
BUCKETED_MAX_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CandleQuery:
    """A request made concrete: up to ``count`` candles opening from ``start`` (inclusive)
    to ``end``; the first ones from ``start``, or (``latest``) the last ones before ``end``.

    ``aligned``: candles open on multiples of the timeframe since the epoch (timeframes up
    to a day), so ``start`` and ``end`` are candle boundaries and ``count`` is exact. Longer
    timeframes follow each exchange's calendar (weeks from Monday or Thursday, months of
    28 to 31 days): their bounds are the client's own.
    """

    timeframe: str
    tf_ms: int
    start: int
    end: int
    count: int
    asked: dict[str, int | None]
    aligned: bool = True
    latest: bool = False


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

    ``since`` alone or with ``limit``: the first candles from ``since`` (none yet when the
    next candle has not opened). ``until`` (exclusive) alone or with ``limit``: the last
    candles before it. Both: the range, at most ``limit`` candles from its start. Neither:
    the latest ``limit`` candles, the open one included. Raises
    :class:`errors.InvalidParameter` for a range that is empty, in the future or larger
    than ``OHLCV_MAX_CANDLES``.
    """
    maximum = settings.ohlcv_max_candles
    if limit is not None and not 1 <= limit <= maximum:
        raise errors.InvalidParameter(
            "limit", f"limit must be 1 to {maximum}", valid=f"1..{maximum}"
        )
    aligned = tf_ms <= BUCKETED_MAX_MS
    # End of the open candle: aligned, it is known; else any candle opened by now counts.
    horizon = (now // tf_ms + 1) * tf_ms if aligned else now + 1
    if since is not None and since >= horizon:
        raise errors.InvalidParameter("since", "since is in the future")
    if since is not None and until is not None and until <= since:
        raise errors.InvalidParameter("until", "until must be later than since")

    def first(ts: int) -> int:
        return _ceil(ts, tf_ms) if aligned else ts

    latest = since is None
    wanted = limit or settings.ohlcv_default_limit
    if since is not None:
        start = min(first(since), horizon)
        end = horizon if until is None else min(first(until), horizon)
        if until is None or limit is not None:
            end = min(end, start + wanted * tf_ms) if aligned else end
    else:
        end = horizon if until is None else min(first(until), horizon)
        start = max(0, end - wanted * tf_ms)
        if end <= 0:
            raise errors.InvalidParameter("until", "the range holds no whole candle")
    if since is not None and until is not None and end <= start:
        raise errors.InvalidParameter("until", "the range holds no whole candle")
    span = (end - start) // tf_ms
    if span > maximum:
        raise errors.InvalidParameter(
            "until",
            f"the range spans {span} candles; at most {maximum} per request",
            valid=f"at most {maximum} candles",
        )
    count = span if aligned else (wanted if limit is not None or until is None else span)
    asked = {"since": since, "until": until, "limit": limit}
    return CandleQuery(
        timeframe=timeframe,
        tf_ms=tf_ms,
        start=start,
        end=end,
        count=count,
        asked=asked,
        aligned=aligned,
        latest=latest,
    )


def _ceil(ts: int, step: int) -> int:
    return -(-ts // step) * step
