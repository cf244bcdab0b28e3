"""What one page of OHLCV history means on an exchange, derived from ccxt's own code for it.

Exchanges page history differently: forward from ``since``, a fixed window per request,
newest first within a range, or only their latest candles whatever ``since`` says. Rather
than a table of exchanges, the model is read off ccxt at run time, per market type and
timeframe: :func:`ccxt_internals.requests_built` lets ccxt's ``fetch_ohlcv`` build the
requests it would send for a few argument sets (nothing is sent), and comparing them says
whether ``since`` reaches the exchange at all and whether ``params['until']`` is mapped onto
the request (so a page can be asked for an exact window). The page size is the smaller of
ccxt's ``features`` for the market's type and the page its own ``paginate`` uses.
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
_PROBE_AGE_CANDLES = 100_000  # the probe's since: far enough back for "history" endpoints


@dataclass(frozen=True, slots=True)
class Paging:
    """How to page an exchange's candles of one market type and timeframe.

    ``page``: the most candles one request returns. ``follows_since``: the request says
    where to start; without it the exchange answers its latest candles only. ``bounded``:
    ccxt maps ``params['until']`` onto the request, so a page can be asked for an exact
    window ``[since, until]`` and then speaks for all of it.
    """

    page: int
    follows_since: bool
    bounded: bool


async def derive(client: Any, market: Mapping[str, Any], timeframe: str) -> Paging:
    """The paging of ``market``'s candles in ``timeframe``, read off ccxt's code (no call).

    When ccxt cannot build a request for the probe's arguments, the conservative model:
    pages that follow ``since``, unbounded (a page then speaks only up to its last candle).
    """
    tf_ms = int(client.parse_timeframe(timeframe) * 1000)
    since = (client.milliseconds() // tf_ms - _PROBE_AGE_CANDLES) * tf_ms
    later = since + 50 * tf_ms
    # Earlier than the end of the page asked for, so that ccxt's own window end (where it
    # computes one from since and limit) cannot hide whether it reads ``until``.
    until = since + _PROBE_LIMIT // 3 * tf_ms - 1
    built, entries = await requests_built(
        client,
        market,
        [
            (timeframe, since, _PROBE_LIMIT, {}),
            (timeframe, later, _PROBE_LIMIT, {}),
            (timeframe, since, _PROBE_LIMIT, {"until": until}),
        ],
    )
    plain, moved, bounded = built
    stated = [size for size in (features_limit(client, market), *entries) if size]
    page = min(stated) if stated else DEFAULT_PAGE
    if plain is None:
        return Paging(page=page, follows_since=True, bounded=False)
    # ccxt passes an ``until`` it does not read on to the exchange as is: never send it then.
    raw = rf"\buntil\W{{1,3}}{until}\b"
    passed_raw = bounded is not None and re.search(raw, bounded) is not None
    return Paging(
        page=page,
        follows_since=moved is not None and moved != plain,
        bounded=bounded is not None and bounded != plain and not passed_raw,
    )


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
