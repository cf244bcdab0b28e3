"""Candles from the exchange: each market's paging read off ccxt, pages fetched and checked."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from market_proxy import errors, normalize
from market_proxy.candles.walk import Walked, walk
from market_proxy.exchanges.gateway import ExchangeGateway
from market_proxy.exchanges.paging import Paging, derive
from market_proxy.exchanges.venue import Venue, market_kind
from market_proxy.intervals import Interval


class CandleSource:
    def __init__(self, gateway: ExchangeGateway, *, walk_seconds: float) -> None:
        self._gateway = gateway
        self._walk_seconds = walk_seconds
        self._paging: dict[tuple[str, str, str, str], Paging] = {}

    async def paging(self, venue: Venue, market: Mapping[str, Any], timeframe: str) -> Paging:
        """How ``market``'s candles page on its exchange (derived once per container, per
        exchange, market type and timeframe; costs no upstream call)."""
        key = (venue.id, *market_kind(market), timeframe)
        paging = self._paging.get(key)
        if paging is None:
            paging = await derive(venue.client, market, timeframe)
            self._paging[key] = paging
        return paging

    async def fetch(
        self,
        venue: Venue,
        market: Mapping[str, Any],
        timeframe: str,
        ranges: list[Interval],
        *,
        step_ms: int,
        listed: bool = True,
        enough: int | None = None,
    ) -> Walked:
        """Every candle the exchange serves in ``ranges``, paged as its paging says.

        Costs upstream the pages :func:`walk` makes: per range, ceil(candles / page) for an
        exchange whose pages ccxt can bound, a page more per hole for one it cannot, one
        for an exchange that serves only its latest candles. Raises :class:`errors.ProxyError`
        (a page that cannot be read is :class:`errors.UpstreamBadResponse`).
        """
        paging = await self.paging(venue, market, timeframe)
        symbol = market["symbol"]

        async def page(since: int | None, limit: int, until: int | None) -> list[list[Any]]:
            params = {"until": until} if until is not None else {}

            async def fetch() -> list[list[Any]]:
                rows = await venue.client.fetch_ohlcv(symbol, timeframe, since, limit, params)
                return normalize.candles(venue.id, rows)

            return await self._gateway.call(venue.id, "ohlcv", fetch)

        created = market.get("created")
        listed_ms = created if listed and isinstance(created, int) and created > 0 else None
        stop_at = time.monotonic() + self._walk_seconds  # real seconds, as the gateway's
        return await walk(
            page,
            paging,
            ranges,
            step_ms=step_ms,
            listed_ms=listed_ms,
            enough=enough,
            in_time=lambda: time.monotonic() < stop_at,
        )


def too_long(exchange: str, pages: int) -> errors.UpstreamTimeout:
    """A history longer than one request has time to fetch: what was fetched is kept, so
    asking again goes on from there."""
    return errors.UpstreamTimeout(
        f"{exchange}: this much history takes more than OHLCV_WALK_SECONDS to fetch; "
        f"the {pages} pages fetched are kept: ask again to go on from there",
        retry_after=1.0,
    )
