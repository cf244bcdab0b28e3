"""Live tickers as Server-Sent Events, read through the same cache as ``/ticker``.

Every stream polls the MarketData service at its interval, so N subscribers of one symbol
cost the exchange what one costs: the cache answers all but one caller per freshness window.
An event goes out only when a ticker changed. Its ``id`` records what the client has, one
short fingerprint per symbol, so a client reconnecting with ``Last-Event-ID`` is not sent
again what it already holds, whichever container it reaches. The stream ends with a
``reconnect`` event before the function's time limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.cache.entry import encode_json
from market_proxy.models import TICKER_STATE
from market_proxy.observability import count
from market_proxy.service import MarketData

_ID_SEPARATOR = "."
_FINGERPRINT_CHARS = 8
MAX_SYMBOLS = 20
# An event id holds one fingerprint per symbol ("-" * 8 for none yet).
MAX_EVENT_ID_LENGTH = MAX_SYMBOLS * (_FINGERPRINT_CHARS + len(_ID_SEPARATOR)) - 1
EVENT_ID_PATTERN = rf"^[0-9a-f-]{{{_FINGERPRINT_CHARS}}}(\.[0-9a-f-]{{{_FINGERPRINT_CHARS}}})*$"


class _Gauge:
    """How many streams this process is serving now (logged, and read by tests)."""

    active = 0


streams_open = _Gauge()


@dataclass(frozen=True, slots=True)
class StreamLimits:
    interval_s: float
    heartbeat_s: float
    max_duration_s: float
    retry_ms: int


def fingerprint(ticker: dict[str, Any]) -> str:
    """A short digest of what a subscriber would see change in a ticker."""
    return _digest([ticker.get(name) for name in TICKER_STATE])


def book_fingerprint(book: dict[str, Any]) -> str:
    """A short digest of what a subscriber would see change in a book: its levels."""
    return _digest([book.get("bids"), book.get("asks")])


def _digest(values: list[Any]) -> str:
    text = json.dumps(values, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True, slots=True)
class Feed:
    """What a stream polls for each symbol, and the event it sends when that changed."""

    event: str
    read: Callable[[str], Awaitable[Answer]]
    fingerprint: Callable[[dict[str, Any]], str]


def parse_last_event_id(header: str | None, count_: int) -> list[str | None]:
    """Per-symbol fingerprints from ``Last-Event-ID``; anything malformed means "nothing"."""
    held: list[str | None] = [None] * count_
    if not header:
        return held
    parts = header.strip().split(_ID_SEPARATOR)
    if len(parts) != count_:
        return held
    for index, part in enumerate(parts):
        if len(part) == _FINGERPRINT_CHARS and all(c in "0123456789abcdef-" for c in part):
            held[index] = part if part != "-" * _FINGERPRINT_CHARS else None
    return held


def event(name: str, data: Any, *, event_id: str | None = None, retry_ms: int | None = None) -> str:
    """One SSE event; ``data`` is JSON already encoded, or a value to encode."""
    lines = [] if retry_ms is None else [f"retry: {retry_ms}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {name}")
    encoded = data if isinstance(data, bytes) else encode_json(data)
    lines.append(f"data: {encoded.decode()}")
    return "\n".join(lines) + "\n\n"


async def ticker_events(
    service: MarketData,
    exchange: str,
    symbols: Sequence[str],
    limits: StreamLimits,
    *,
    last_event_id: str | None = None,
) -> AsyncGenerator[str, None]:
    """SSE text for a ticker stream of ``symbols`` on ``exchange``.

    Validates everything before the first byte (raising :class:`errors.ProxyError`), then
    yields: a ``retry:`` hint; a ``ticker`` event per symbol whenever its ticker changed; a
    ``problem`` event when a symbol cannot be refreshed (the stream goes on); a heartbeat
    comment when nothing was sent for ``heartbeat_s``; finally a ``reconnect`` event.
    Cancelled (client gone), it stops at once.
    """
    exchange_id, canonical = await service.resolve(exchange, symbols)
    held = parse_last_event_id(last_event_id, len(canonical))
    feed = Feed("ticker", lambda symbol: service.ticker(exchange_id, symbol), fingerprint)
    return _run(feed, canonical, held, limits)


async def order_book_events(
    service: MarketData,
    exchange: str,
    symbol: str,
    depth: int | None,
    limits: StreamLimits,
    *,
    last_event_id: str | None = None,
) -> AsyncGenerator[str, None]:
    """SSE text for an order book stream of one market, ``depth`` levels a side: as
    :func:`ticker_events`, with an ``orderbook`` event whenever the book's levels changed."""
    exchange_id, canonical = await service.resolve(exchange, [symbol])
    await service.order_book(exchange_id, canonical[0], depth)  # validates depth, warms
    held = parse_last_event_id(last_event_id, 1)

    def read(market: str) -> Awaitable[Answer]:
        return service.order_book(exchange_id, market, depth)

    return _run(Feed("orderbook", read, book_fingerprint), canonical, held, limits)


async def _run(
    feed: Feed,
    symbols: list[str],
    held: list[str | None],
    limits: StreamLimits,
) -> AsyncGenerator[str, None]:
    started = time.monotonic()
    deadline = started + limits.max_duration_s
    next_poll = started
    next_heartbeat = started + limits.heartbeat_s
    failing: list[str | None] = [None] * len(symbols)
    # The retry hint rides on the first event: some clients dispatch a block without data
    # as an empty event, which a spec-following one would not.
    retry: int | None = limits.retry_ms
    count("StreamsOpened")
    streams_open.active += 1
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_poll:
                next_poll = now + limits.interval_s
                poll = asyncio.ensure_future(
                    asyncio.gather(
                        *(feed.read(symbol) for symbol in symbols), return_exceptions=True
                    )
                )
                # A poll still waiting on the exchange at the time limit is given up (as one
                # is when the client goes): the stream ends on time, with its reconnect event.
                try:
                    await asyncio.wait({poll}, timeout=max(0.0, deadline - time.monotonic()))
                finally:
                    late = not poll.done()
                    if late:
                        poll.cancel()
                        poll.add_done_callback(_retrieved)
                if late:
                    break
                answers = poll.result()
                for index, answer in enumerate(answers):
                    if isinstance(answer, errors.ProxyError):
                        # Said once per failure, not at every poll while it lasts.
                        if failing[index] != answer.code:
                            failing[index] = answer.code
                            yield event("problem", _problem(symbols[index], answer), retry_ms=retry)
                            retry = None
                            next_heartbeat = time.monotonic() + limits.heartbeat_s
                        continue
                    if isinstance(answer, BaseException):
                        raise answer
                    failing[index] = None
                    mark = feed.fingerprint(answer.data)
                    if mark == held[index]:
                        continue
                    held[index] = mark
                    yield event(
                        feed.event, answer.body_json(), event_id=_event_id(held), retry_ms=retry
                    )
                    retry = None
                    count("StreamEvents")
                    next_heartbeat = time.monotonic() + limits.heartbeat_s
            now = time.monotonic()
            if now >= next_heartbeat:
                yield f": heartbeat {int(time.time())}\n\n"
                next_heartbeat = now + limits.heartbeat_s
            await asyncio.sleep(
                max(0.0, min(next_poll, next_heartbeat, deadline) - time.monotonic())
            )
        reconnect = {"reason": "time_limit", "retry_ms": limits.retry_ms}
        yield event("reconnect", reconnect, event_id=_event_id(held), retry_ms=retry)
    finally:
        streams_open.active -= 1
        count("StreamsClosed")


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Take a given-up poll's outcome, so that asyncio does not report it as never taken."""
    if not future.cancelled():
        future.exception()


def _problem(symbol: str, error: errors.ProxyError) -> dict[str, Any]:
    return {"symbol": symbol, **error.problem()}


def _event_id(held: list[str | None]) -> str:
    return _ID_SEPARATOR.join(mark or "-" * _FINGERPRINT_CHARS for mark in held)
