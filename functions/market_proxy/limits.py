"""What each exchange's fleet budget is: ccxt's own rate for one client (one unit of cost per
``rateLimit`` milliseconds), unless ``EXCHANGE_LIMITS`` states it otherwise."""

from __future__ import annotations

import math
from dataclasses import dataclass

from market_proxy.settings import Settings

WINDOW_MS = 1000


@dataclass(frozen=True, slots=True)
class Limit:
    """One exchange's budget: ``per_window`` units a window, of which ``reserve`` is kept
    for requests a client waits on; leases of at most ``lease`` units. Units are ccxt's
    costs (its weights, so that 1 unit is ``rateLimit`` ms of one client's limiter), or,
    ``by_request``, one per request whatever its weight (for limits stated as requests)."""

    per_window: float
    lease: float
    reserve: float
    by_request: bool = False


def default_limit(rate_limit_ms: float, *, lease_fraction: float, reserve_fraction: float) -> Limit:
    """The budget ccxt's own limiter gives one client, for the whole fleet."""
    per_window = WINDOW_MS / max(rate_limit_ms, 1.0)
    return Limit(
        per_window=per_window,
        lease=max(1.0, math.floor(per_window * lease_fraction)),
        reserve=per_window * reserve_fraction,
    )


def limit_for(settings: Settings, exchange: str, rate_limit_ms: float | None) -> Limit:
    """``exchange``'s budget: ccxt's ``rateLimit`` for it, with what ``EXCHANGE_LIMITS``
    states for it (``requests_per_second`` or ``per_second``, ``lease``, ``reserve``)."""
    given = settings.exchange_limits.get(exchange, {})
    rate_ms = float(rate_limit_ms or 1000)
    stated = given.get("requests_per_second", given.get("per_second"))
    if stated is not None:
        rate_ms = 1000 / max(float(stated), 0.001)
    limit = default_limit(
        rate_ms,
        lease_fraction=settings.budget_lease_fraction,
        reserve_fraction=settings.budget_reserve_fraction,
    )
    return Limit(
        limit.per_window,
        max(1.0, float(given["lease"])) if "lease" in given else limit.lease,
        float(given["reserve"]) if "reserve" in given else limit.reserve,
        by_request="requests_per_second" in given,
    )
