"""Cache warming: markets snapshots, listed targets and the most-asked keys, kept fresh.

A run refreshes, for every exchange it touches, the markets snapshot a cold container
restores instead of downloading; then, for each target, the tickers and the recent candles
of each listed timeframe; then the most-asked keys noted by the API. Work runs with bounded
concurrency (each exchange's ccxt rate limiter queues its own requests), stops starting new
work before the deadline, and one failure never stops the rest: the run returns a summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from market_proxy import errors
from market_proxy.budget import in_background
from market_proxy.cache.entry import Cached
from market_proxy.keys import DemandKey, Kind, MarketKey, MarketsKey, SeriesKey
from market_proxy.observability import count, latency, logger
from market_proxy.service import MarketData
from market_proxy.warm_targets import Target


@dataclass
class WarmReport:
    warmed: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    ticker_refreshes: int = 0
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "warmed": self.warmed,
            "fresh": self.fresh,
            "failed": self.failed,
            "skipped": self.skipped,
            "ticker_refreshes": self.ticker_refreshes,
            "duration_ms": self.duration_ms,
            "counts": {
                "warmed": len(self.warmed),
                "fresh": len(self.fresh),
                "failed": len(self.failed),
                "skipped": len(self.skipped),
            },
        }


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a run tells time and waits: the monotonic clock and ``asyncio.sleep``, unless a
    test drives time itself."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True, slots=True)
class Job:
    """One piece of warming: ``label`` names it in the report (a cache key's text)."""

    exchange: str
    label: str
    work: Callable[[], Awaitable[bool]]


async def warm(
    service: MarketData,
    targets: list[Target],
    *,
    deadline: float,
    concurrency: int,
    candles: int,
    top_keys: int,
    period_s: float,
    ticker_loop_s: float = 0.0,
    pacing: Pacing = Pacing(),
) -> WarmReport:
    """Warm what ``targets`` and recent demand name, until ``deadline`` (``pacing``'s
    monotonic clock).

    Cost upstream per run, at most: one markets download per exchange whose snapshot would
    expire before the next run; one ticker request per symbol; per timeframe, one candle
    page (the candles since the last run and the open one). With ``ticker_loop_s``, the
    run then keeps its tickers fresh for that long: one more request per ticker each time
    it is about to expire (``ticker_loop_s / TICKER_TTL_SECONDS`` per ticker per run).
    """
    with in_background():  # the fleet's budget goes to requests clients wait on first
        started = pacing.monotonic()
        report = WarmReport()
        asked = [key for key, _times in await service.most_asked(top_keys)]
        wanted = [key for target in targets for key in target.demand_keys()]
        exchanges = list(dict.fromkeys(key.exchange for key in (*wanted, *asked)))
        markets_jobs = [
            Job(exchange, MarketsKey(exchange).text, _markets(service, exchange, period_s))
            for exchange in exchanges
        ]
        await _run_all(markets_jobs, report, deadline, concurrency, pacing)
        broken = {f["exchange"] for f in report.failed}

        keys: dict[str, DemandKey] = {}
        for key in (*wanted, *asked):  # targets first, then demand: one job per market
            if key.exchange in broken:
                report.skipped.append(
                    {"key": key.text, "exchange": key.exchange, "reason": "markets_failed"}
                )
                continue
            try:
                canonical = await service.demand_key(key)
            except errors.ProxyError as exc:
                report.failed.append(
                    {
                        "key": key.text,
                        "exchange": key.exchange,
                        "code": exc.code,
                        "detail": exc.detail,
                    }
                )
                continue
            keys.setdefault(canonical.text, canonical)
        jobs = [Job(key.exchange, key.text, _work(service, key, candles)) for key in keys.values()]
        await _run_all(jobs, report, deadline, concurrency, pacing)
        if ticker_loop_s > 0:
            failed = {f["key"] for f in report.failed}
            tickers = [
                key
                for key in keys.values()
                if isinstance(key, MarketKey) and key.kind is Kind.TICKER and key.text not in failed
            ]
            end = min(deadline, started + ticker_loop_s)
            report.ticker_refreshes = await _keep_fresh(service, tickers, end, concurrency, pacing)

        report.duration_ms = round((pacing.monotonic() - started) * 1000)
        count("WarmedKeys", len(report.warmed))
        count("WarmFailures", len(report.failed))
        count("WarmSkipped", len(report.skipped))
        latency("WarmDuration", report.duration_ms)
        log = logger.warning if report.failed else logger.info
        log(
            "warm run finished",
            extra={"summary": report.as_dict()["counts"], "failed": report.failed},
        )
        return report


async def _keep_fresh(
    service: MarketData, tickers: list[MarketKey], end: float, concurrency: int, pacing: Pacing
) -> int:
    """Refresh each ticker just before it expires, until ``end``; returns how many refreshes."""
    ttl = service.settings.ticker_ttl_seconds
    tick = max(0.1, ttl / 4)
    gate = asyncio.Semaphore(max(1, concurrency))
    refreshes = 0

    async def refresh(key: MarketKey) -> None:
        nonlocal refreshes
        async with gate:
            try:
                cached = await service.warm(key, unless_fresh_for_s=tick * 2)
            except errors.ProxyError as exc:
                logger.info("ticker refresh failed", extra={"key": key.text, "code": exc.code})
                return
        if cached is not None and not cached.is_stale:
            refreshes += 1

    while pacing.monotonic() + tick < end:
        cycle = pacing.monotonic()
        await asyncio.gather(*(refresh(key) for key in tickers))
        await pacing.sleep(max(0.0, tick - (pacing.monotonic() - cycle)))
    return refreshes


def _work(service: MarketData, key: DemandKey, candles: int) -> Callable[[], Awaitable[bool]]:
    if isinstance(key, SeriesKey):
        return _candles(service, key.exchange, key.symbol, key.timeframe, candles)

    async def work() -> bool:
        return _warmed(await service.warm(key))

    return work


def _markets(service: MarketData, exchange: str, period_s: float) -> Callable[[], Awaitable[bool]]:
    async def work() -> bool:
        # Refreshed while a run still has time to spare, so no container ever downloads.
        cached = await service.warm_markets(exchange, unless_fresh_for_s=2 * period_s)
        return _warmed(cached)

    return work


def _candles(
    service: MarketData, exchange: str, symbol: str, timeframe: str, limit: int
) -> Callable[[], Awaitable[bool]]:
    async def work() -> bool:
        answer = await service.candles(exchange, symbol, timeframe=timeframe, limit=limit)
        if answer.freshness.is_stale:
            reason = answer.freshness.stale_reason or "upstream_error"
            raise errors.rebuild(reason, "served stale")
        return answer.freshness.source == "upstream"

    return work


def _warmed(cached: Cached | None) -> bool:
    if cached is not None and cached.is_stale:
        raise errors.rebuild(
            cached.freshness.stale_reason or "upstream_error", "the refresh failed"
        )
    return cached is not None


async def _run_all(
    jobs: list[Job], report: WarmReport, deadline: float, concurrency: int, pacing: Pacing
) -> None:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(job: Job) -> None:
        exchange, key = job.exchange, job.label
        async with gate:
            if pacing.monotonic() >= deadline:
                report.skipped.append({"key": key, "exchange": exchange, "reason": "deadline"})
                return
            try:
                remaining = max(0.1, deadline - pacing.monotonic())
                did_work = await asyncio.wait_for(job.work(), timeout=remaining)
            except errors.ProxyError as exc:
                report.failed.append(
                    {"key": key, "exchange": exchange, "code": exc.code, "detail": exc.detail}
                )
            except TimeoutError:
                report.failed.append(
                    {"key": key, "exchange": exchange, "code": "deadline", "detail": "cut off"}
                )
            except Exception as exc:  # one broken target must not stop the others
                logger.exception("warming failed unexpectedly", extra={"key": key})
                report.failed.append(
                    {
                        "key": key,
                        "exchange": exchange,
                        "code": "internal_error",
                        "detail": type(exc).__name__,
                    }
                )
            else:
                (report.warmed if did_work else report.fresh).append(key)

    await asyncio.gather(*(run(job) for job in jobs))
