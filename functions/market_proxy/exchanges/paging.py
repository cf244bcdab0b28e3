"""What one page of OHLCV history means on an exchange, derived from ccxt's own code for it.

Exchanges page history differently: forward from ``since``, a fixed window per request,
newest first within a range, backward from an end time only, or only their latest candles
whatever ``since`` says. Rather than a table of exchanges, the model is read off ccxt at run
time, per market type and timeframe: :func:`ccxt_internals.requests_built` lets ccxt's
``fetch_ohlcv`` build the requests it would send for a few argument sets (nothing is sent),
and comparing them says

- whether ``since`` reaches the exchange at all. It may reach it coarsely (ccxt turns it into
  a date for a day's file), so it is moved both by a few candles and by more than a year;
  where only a move across a day (or an hour) changes the request, that is its *grain*, and
  an answer then says nothing past the grain's end;
- whether ``params['until']`` is mapped onto the request, so a page can be asked for an exact
  window: also where ``since`` is not (ccxt then pages backward from ``until``);
- how many candles ccxt lets one request ask for: the smaller of ccxt's ``features`` for the
  market's type, the page its own ``paginate`` uses, and the limit that reaches the request
  when a huge one is asked (ccxt's clamp in its code, which ``features`` may not record).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy.exchanges.ccxt_internals import requests_built

# What the service assumes when ccxt records no page size at all (its own default is 1000).
DEFAULT_PAGE = 500
_PROBE_LIMIT = 70  # unlike any exchange's default or cap, so its effect on a request shows
_HUGE_LIMIT = 99_991  # more than any exchange serves: what reaches the request is ccxt's cap
_PROBE_AGE_CANDLES = 100_000  # the probe's since: far enough back for "history" endpoints
_HOUR, _DAY = 3_600_000, 86_400_000
_FAR_MS = 400 * _DAY  # a move of since that a since turned into a day or a year still shows
_GRAINS = (_HOUR, _DAY)  # the coarse sinces ccxt builds (an hour's, a day's file)


@dataclass(frozen=True, slots=True)
class Paging:
    """How to page an exchange's candles of one market type and timeframe.

    ``page``: the most candles one request returns. ``follows_since``: the request says
    where to start; without it (and without ``bounded``) the exchange answers its latest
    candles only. ``bounded``: ccxt maps ``params['until']`` onto the request, so a page can
    be asked for an exact window ``[since, until]`` and then speaks for all of it (where
    ``since`` does not reach the exchange, ccxt pages backward from ``until``).
    ``since_grain_ms``: where ccxt sends only the hour or the day ``since`` falls in (epoch
    aligned) and no limit, the exchange answers that hour's or day's candles: a page with
    fewer than asked speaks up to the end of it, and never past it.
    """

    page: int
    follows_since: bool
    bounded: bool
    since_grain_ms: int | None = None


async def derive(client: Any, market: Mapping[str, Any], timeframe: str) -> Paging:
    """The paging of ``market``'s candles in ``timeframe``, read off ccxt's code (no call).

    When ccxt cannot build a request for the probe's arguments, the conservative model:
    pages that follow ``since``, unbounded (a page then speaks only up to its last candle).
    """
    tf_ms = int(client.parse_timeframe(timeframe) * 1000)
    since = (client.milliseconds() // tf_ms - _PROBE_AGE_CANDLES) * tf_ms
    # Earlier than the end of the page asked for, so that ccxt's own window end (where it
    # computes one from since and limit) cannot hide whether it reads ``until``.
    until = since + _PROBE_LIMIT // 3 * tf_ms - 1
    calls: list[tuple[str, int | None, int | None, Any]] = [
        (timeframe, since, _PROBE_LIMIT, {}),
        (timeframe, since, _PROBE_LIMIT, {"until": until}),
        (timeframe, since, _HUGE_LIMIT, {}),
        (timeframe, since + 50 * tf_ms, _PROBE_LIMIT, {}),
        (timeframe, since - _FAR_MS // tf_ms * tf_ms, _PROBE_LIMIT, {}),
    ]
    # Per grain: a grain-aligned since, the last candle of that grain, the next grain's start.
    grains = [grain for grain in _GRAINS if grain > tf_ms and grain % tf_ms == 0]
    for grain in grains:
        first = since // grain * grain
        calls += [(timeframe, at, _PROBE_LIMIT, {}) for at in (first, first + grain - tf_ms)]
        calls.append((timeframe, first + grain, _PROBE_LIMIT, {}))
    built, entries = await requests_built(client, market, calls)
    plain, bounded, huge, *moves = built[:5]
    stated = [
        size
        for size in (features_limit(client, market), *entries, _limit_sent(plain, huge))
        if size
    ]
    page = min(stated) if stated else DEFAULT_PAGE
    if plain is None:
        return Paging(page=page, follows_since=True, bounded=False)
    # ccxt passes an ``until`` it does not read on to the exchange as is: never send it then.
    raw = rf"\buntil\W{{1,3}}{until}\b"
    passed_raw = bounded is not None and re.search(raw, bounded) is not None
    is_bounded = bounded is not None and bounded != plain and not passed_raw
    follows = any(moved is not None and moved != plain for moved in moves)
    grain_ms = None
    # A grain only where the request names nothing but the grain (not the limit either): the
    # exchange then sends the grain's whole file, and ccxt cuts it at since and limit.
    if follows and not is_bounded and plain == huge:
        for index, grain in enumerate(grains):
            first, last, following = built[5 + 3 * index : 8 + 3 * index]
            if first is not None and first == last and following not in (None, first):
                grain_ms = grain
                break
    return Paging(page=page, follows_since=follows, bounded=is_bounded, since_grain_ms=grain_ms)


def _limit_sent(probe: str | None, huge: str | None) -> int | None:
    """The limit ccxt put in the request asked for ``_HUGE_LIMIT`` candles, where it put the
    probe's limit in the same place of an otherwise alike request; None where it sent the
    huge limit as asked, or no limit that shows."""
    if probe is None or huge is None:
        return None
    probe_parts, huge_parts = re.split(r"(\d+)", probe), re.split(r"(\d+)", huge)
    if len(probe_parts) != len(huge_parts) or probe_parts[::2] != huge_parts[::2]:
        return None
    sent = [
        int(theirs)
        for ours, theirs in zip(probe_parts[1::2], huge_parts[1::2], strict=True)
        if ours == str(_PROBE_LIMIT)
    ]
    capped = [value for value in sent if 0 < value < _HUGE_LIMIT]
    return min(capped) if capped else None


def features_limit(client: Any, market: Mapping[str, Any]) -> int | None:
    """ccxt's ``features[type][subtype]['fetchOHLCV']['limit']`` for ``market``, if any."""
    features = client.features or {}
    section = features.get(market.get("type") or "spot") or {}
    if not isinstance(section, Mapping):
        return None
    if "fetchOHLCV" not in section:
        subtype = "inverse" if market.get("inverse") else "linear"
        section = section.get(subtype) or {}
    limit = (section.get("fetchOHLCV") or {}).get("limit") if isinstance(section, Mapping) else None
    return limit if isinstance(limit, int) and limit > 0 else None


def ohlcv_page_limit(client: Any) -> int:
    """How many candles one request to the exchange returns at most (ccxt's ``features``)."""
    features = client.features or {}
    for market_type in ("spot", "swap", "future"):
        section = features.get(market_type) or {}
        for candidate in (section, *section.values()):
            if isinstance(candidate, Mapping):
                limit = (candidate.get("fetchOHLCV") or {}).get("limit")
                if isinstance(limit, int) and limit > 0:
                    return limit
    return 500
