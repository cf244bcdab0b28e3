"""The loopback exchange: an aiohttp server in a thread of its own, answering like Binance,
Kraken, Coinbase Exchange, Bybit and OKX under ``/<exchange>/<original host>/<original path>``.

Point ccxt at it with :meth:`ExchangeSim.ccxt_options`, which rewrites the exchange's own
``urls['api']``; that is exactly the ``EXCHANGE_OPTIONS`` an operator would set.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from infra.exchange_sim import (
    binance_routes,
    bybit_routes,
    coinbase_routes,
    kraken_routes,
    okx_routes,
)
from infra.exchange_sim.faults import (
    ALTERED,
    Fault,
    FaultQueue,
    altered_body,
    canned,
    truncated_body,
)
from infra.exchange_sim.limits import WEIGHT_HEADER, AddressLimits
from infra.exchange_sim.market_data import SUPPORTED, MarketBook
from infra.exchange_sim.routing import NOT_FOUND, Call, Reply, Router


@dataclass(frozen=True, slots=True)
class CallRecord:
    exchange: str
    # "markets" (currencies included), "ticker", "tickers", "ohlcv", "orderbook", "trades",
    # "funding" or "other"
    endpoint: str
    path: str
    params: dict[str, str]
    at: float = field(default_factory=time.time)
    headers: dict[str, str] = field(default_factory=dict)


class ExchangeSim:
    def __init__(
        self,
        *,
        synthetic_markets: int = 40,
        seed: int = 1,
        latency_s: float = 0.0,
        walk: bool = False,
        port: int = 0,
    ) -> None:
        self.book = MarketBook(synthetic=synthetic_markets, seed=seed)
        self._faults = FaultQueue()
        self.limits = AddressLimits()
        self._latency = latency_s
        self._walk = walk
        self._port = port
        self._calls: list[CallRecord] = []
        self._calls_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="exchange-sim", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if failure:
            raise RuntimeError("the loopback exchange did not start") from failure[0]
        return self

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        app.router.add_route("*", "/_sim/{action}", self._control)
        app.router.add_route("*", "/{exchange}/{host}/{tail:.*}", self._exchange)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._stopped = asyncio.Event()
        walker = asyncio.create_task(self._walk_prices()) if self._walk else None
        ready.set()
        await self._stopped.wait()
        if walker is not None:
            walker.cancel()
        await self._runner.cleanup()

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def _walk_prices(self) -> None:
        rng = random.Random(self.book.seed)  # noqa: S311 - a price walk, not a secret  # nosec B311
        while True:
            await asyncio.sleep(1.0)
            self.book.walk(rng)

    # -- pointing ccxt here -------------------------------------------------------------

    def ccxt_options(self, exchange_id: str) -> dict[str, Any]:
        """The ccxt config fragment that sends every API call of ``exchange_id`` here."""
        return {"urls": {"api": _rewrite(_ccxt_api_urls(exchange_id), f"{self.url}/{exchange_id}")}}

    def ccxt_options_down(self, exchange_id: str) -> dict[str, Any]:
        """The same, aimed at a loopback port where nothing listens (connection refused)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        base = f"http://127.0.0.1:{port}/{exchange_id}"
        return {"urls": {"api": _rewrite(_ccxt_api_urls(exchange_id), base)}}

    # -- what tests read and steer ------------------------------------------------------

    def calls(self, exchange_id: str | None = None, endpoint: str | None = None) -> int:
        with self._calls_lock:
            return sum(
                1
                for c in self._calls
                if exchange_id in (None, c.exchange) and endpoint in (None, c.endpoint)
            )

    def call_log(self) -> list[CallRecord]:
        with self._calls_lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    def set_ticker(
        self,
        exchange_id: str,
        market_id: str,
        *,
        last: float,
        bid: float | None = None,
        ask: float | None = None,
        **more: float,
    ) -> None:
        values = {"last": last, **more}
        if bid is not None:
            values["bid"] = bid
        if ask is not None:
            values["ask"] = ask
        self.book.set_ticker(exchange_id, market_id, values)

    def ticker_state(self, exchange_id: str, market_id: str) -> dict[str, float]:
        market = self.book.find(exchange_id, market_id)
        if market is None:
            raise KeyError(f"{exchange_id} has no market {market_id}")
        return self.book.ticker(market).as_dict()

    def set_clock(self, now_ms: int | None) -> None:
        self.book.set_clock(now_ms)

    def add_gap(self, exchange_id: str, market_id: str, start_ms: int, end_ms: int) -> None:
        self.book.add_gap(exchange_id, market_id, start_ms, end_ms)

    def set_listing(
        self, exchange_id: str, market_id: str, listed_ms: int, *, kind: str | None = None
    ) -> None:
        self.book.set_listing(exchange_id, market_id, listed_ms, kind=kind)

    def set_history_limit(self, exchange_id: str, candles: int | None) -> None:
        self.book.set_history_limit(exchange_id, candles)

    def reset_history(self) -> None:
        self.book.reset_history()

    def inject(
        self,
        exchange_id: str,
        fault: str,
        *,
        endpoint: str | None = None,
        times: int = 1,
        retry_after: int | str | None = None,
        delay_s: float | None = None,
        size_bytes: int | None = None,
    ) -> None:
        self._faults.add(
            Fault(exchange_id, fault, endpoint, times, retry_after, delay_s, size_bytes)
        )

    def set_rate_limit(
        self,
        exchange_id: str,
        per_second: int | None,
        *,
        ban_after: int | None = None,
        ban_s: float = 60.0,
    ) -> None:
        """Answer 429 past ``per_second`` requests a second from this address, and ban it
        (the format's 418 answer) once it was told so ``ban_after`` times; None: no limit."""
        self.limits.set(exchange_id, per_second, ban_after=ban_after, ban_s=ban_s)

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_latency(self, seconds: float) -> None:
        self._latency = seconds

    # -- serving ------------------------------------------------------------------------

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        exchange = request.match_info["exchange"]
        call = Call(
            request.match_info["host"], "/" + request.match_info["tail"], dict(request.query)
        )
        router = _ROUTES.get(exchange)
        route = router(call) if router else NOT_FOUND
        with self._calls_lock:
            self._calls.append(
                CallRecord(
                    exchange, route.endpoint, call.path, call.params, headers=dict(request.headers)
                )
            )
        refusal, weight = self.limits.admit(exchange)
        if self._latency:
            await asyncio.sleep(self._latency)
        fault = self._faults.take(exchange, route.endpoint)
        if refusal is not None and route.handler is not None:
            fault = Fault(exchange, refusal, None, 1, 1 if refusal == "429" else 60, None)
        if route.handler is None:
            return web.json_response({"code": -1, "msg": f"no route {call.path}"}, status=404)
        if fault is not None and fault.kind in ("timeout", "reset"):
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s if fault.delay_s is not None else 30.0)
            elif request.transport is not None:
                request.transport.abort()
            return web.Response(status=504)
        if fault is not None and fault.kind == "huge":
            return await _huge(request, fault.size_bytes or 64 * 1024 * 1024)
        if fault is not None and fault.kind not in ("truncated", *ALTERED):
            reply = canned(exchange, fault, route.endpoint, self.book.now_ms())
            return web.Response(
                status=reply.status,
                text=reply.body,
                content_type=reply.content_type,
                headers=dict(reply.headers),
            )
        try:
            payload = route.handler(self.book, call)
        except Reply as answer:
            return web.json_response(answer.body, status=answer.status)
        if fault is not None and fault.kind in ALTERED:
            return web.Response(
                text=altered_body(fault.kind, payload), content_type="application/json"
            )
        if fault is not None:  # truncated
            return await _truncated(request, payload)
        response = web.json_response(payload)
        if exchange == "binance":
            response.headers[WEIGHT_HEADER] = str(weight)
        return response

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        data: dict[str, Any] = await request.json() if request.can_read_body else {}
        if action == "calls":
            return web.json_response(
                {"calls": self.calls(request.query.get("exchange"), request.query.get("endpoint"))}
            )
        if action == "reset":
            self.reset_calls()
            self.clear_faults()
        elif action == "ticker":
            self.set_ticker(data.pop("exchange"), data.pop("market_id"), **data)
        elif action == "fault":
            self.inject(data.pop("exchange"), data.pop("fault"), **data)
        elif action == "clock":
            self.set_clock(data.get("now_ms"))
        elif action == "listing":
            self.set_listing(
                data["exchange"], data["market_id"], int(data["listed_ms"]), kind=data.get("kind")
            )
        elif action == "history_limit":
            self.set_history_limit(data["exchange"], data.get("candles"))
        elif action == "gap":
            self.add_gap(
                data["exchange"], data["market_id"], int(data["start_ms"]), int(data["end_ms"])
            )
        elif action == "reset_history":
            self.reset_history()
        elif action == "latency":
            self.set_latency(float(data["seconds"]))
        else:
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response({"ok": True})


async def _huge(request: web.Request, size: int) -> web.StreamResponse:
    """A well-formed JSON answer of ``size`` bytes, written a chunk at a time, chunked
    (no ``Content-Length`` to refuse it by: the client finds out by reading)."""
    head, tail = b'{"padding": "', b'"}'
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(head)
    left = size - len(head) - len(tail)
    chunk = b"x" * (256 * 1024)
    try:
        while left > 0:
            await response.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        await response.write(tail)
    except (ConnectionResetError, RuntimeError):
        pass  # the client stopped reading, as it should
    return response


async def _truncated(request: web.Request, payload: Any) -> web.StreamResponse:
    part, whole = truncated_body(payload)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = whole
    await response.prepare(request)
    await response.write(part)
    if request.transport is not None:
        request.transport.close()
    return response


_ROUTES: dict[str, Router] = {
    "binance": binance_routes.route,
    "kraken": kraken_routes.route,
    "coinbaseexchange": coinbase_routes.route,
    "bybit": bybit_routes.route,
    "okx": okx_routes.route,
}
assert set(_ROUTES) == set(SUPPORTED)


# -- URL rewriting ------------------------------------------------------------------------


def _ccxt_api_urls(exchange_id: str) -> Any:
    import ccxt

    exchange = getattr(ccxt, exchange_id)()
    return exchange.urls["api"]


def _rewrite(urls: Any, base: str) -> Any:
    """Every ``https://host/path`` in ``urls`` (nested) becomes ``<base>/host/path``."""
    if isinstance(urls, dict):
        return {key: _rewrite(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("https://", "http://")):
        return f"{base}/{urls.split('://', 1)[1]}"
    return urls
