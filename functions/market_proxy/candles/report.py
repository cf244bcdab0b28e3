"""A candle answer's body (what was asked, what came back, where the exchange has none) and
its freshness."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from market_proxy.answers import Answer
from market_proxy.cache.entry import Freshness, Lifetime, Source
from market_proxy.candles.query import CandleQuery
from market_proxy.exchanges.venue import Venue
from market_proxy.intervals import Interval, clip, merge, subtract
from market_proxy.models import CANDLE_COLUMNS
from market_proxy.settings import Settings


def report(
    venue: Venue,
    market: Mapping[str, Any],
    query: CandleQuery,
    rows: list[list[Any]],
    *,
    answered: list[Interval] | None,
    open_candle: bool,
) -> dict[str, Any]:
    """The answer's body. ``answered``: where the exchange has said what it has (timeframes
    on a grid); there, every slot without a candle is reported as a gap."""
    tf = query.tf_ms
    gaps: list[Interval] = []
    if answered is not None and len(rows) < query.count:
        slots = merge((int(row[0]), int(row[0]) + tf) for row in rows)
        for interval in clip(answered, (query.start, query.end)):
            gaps.extend(subtract(interval, slots))
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
            "open_candle": open_candle,
        },
        "gaps": [list(gap) for gap in merge(gaps)],
        "columns": list(CANDLE_COLUMNS),
        "candles": rows,
    }


def assembled(
    lifetimes: Iterable[tuple[Lifetime, bool]],
    payload: dict[str, Any],
    source: Source,
    stale_reason: str | None,
    settings: Settings,
    now: int,
    *,
    reaches_present: bool,
) -> Answer:
    """One answer assembled from several entries (``lifetimes``: each entry's, and whether
    it holds candles that may still change): fetched when its newest entry was; fresh until
    the first entry holding changeable candles goes stale, and no longer than
    ``OHLCV_OPEN_TTL_SECONDS`` from that fetch when the range reaches the present (whether
    or not the exchange has a candle there yet)."""
    used = list(lifetimes)
    fetched = max((life.fetched_at for life, _ in used), default=now)
    limits = [life.fresh_until for life, changeable in used if changeable]
    if reaches_present:
        limits.append(fetched + round(settings.ohlcv_open_ttl_seconds * 1000))
    fresh_until = min(limits, default=now + round(settings.ohlcv_closed_ttl_seconds * 1000))
    freshness = Freshness(Lifetime.fixed(fetched, fresh_until), source, now, stale_reason)
    return Answer.assembled(payload, freshness)
