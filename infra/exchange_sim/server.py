"""The loopback exchange: an aiohttp server in a thread of its own, answering like Binance
and Kraken under ``/<exchange>/<original host>/<original path>``.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from infra.exchange_sim import binance, kraken
from infra.exchange_sim.faults import Fault, FaultQueue, canned, truncated_body
from infra.exchange_sim.market_data import SUPPORTED, MarketBook


@dataclass(frozen=True, slots=True)
class CallRecord:
    exchange: str
    endpoint: str  # "markets" (currencies included), "ticker", "ohlcv" or "other"
    path: str
    params: dict[str, str]
    at: float = field(default_factory=time.time)
    headers: dict[str, str] = field(default_factory=dict)


class _Reply(Exception):
    """Raised by a route to answer at once (an exchange-style error)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class ExchangeSim:
    def __init__(
        self,
        *,
        synthetic_markets: int = 20,
        seed: int = 1,
        latency_s: float = 0.0,
        walk: bool = False,
        port: int = 0,
    ) -> None:
        self.book = MarketBook(synthetic=synthetic_markets, seed=seed)
        self._faults = FaultQueue()
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

    def inject(
        self,
        exchange_id: str,
        fault: str,
        *,
        endpoint: str | None = None,
        times: int = 1,
        retry_after: int | None = None,
        delay_s: float | None = None,
    ) -> None:
        self._faults.add(Fault(exchange_id, fault, endpoint, times, retry_after, delay_s))

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_latency(self, seconds: float) -> None:
        self._latency = seconds

    # -- serving ------------------------------------------------------------------------

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        exchange = request.match_info["exchange"]
        host = request.match_info["host"]
        path = "/" + request.match_info["tail"]
        params = dict(request.query)
        route = _ROUTES.get(exchange)
        endpoint, handler = route(host, path) if route else ("other", None)
        with self._calls_lock:
            self._calls.append(
                CallRecord(exchange, endpoint, path, params, headers=dict(request.headers))
            )
        if self._latency:
            await asyncio.sleep(self._latency)
        fault = self._faults.take(exchange, endpoint)
        if handler is None:
            return web.json_response({"code": -1, "msg": f"no route {path}"}, status=404)
        if fault is not None and fault.kind in ("timeout", "reset"):
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s if fault.delay_s is not None else 30.0)
            elif request.transport is not None:
                request.transport.abort()
            return web.Response(status=504)
        if fault is not None and fault.kind != "truncated":
            reply = canned(exchange, fault)
            return web.Response(
                status=reply.status,
                text=reply.body,
                content_type=reply.content_type,
                headers=dict(reply.headers),
            )
        try:
            payload = await handler(self, host, params)
        except _Reply as answer:
            return web.json_response(answer.body, status=answer.status)
        if fault is not None:  # truncated
            return await _truncated(request, payload)
        return web.json_response(payload)

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
        elif action == "latency":
            self.set_latency(float(data["seconds"]))
        else:
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response({"ok": True})


Handler = Callable[[ExchangeSim, str, dict[str, str]], Awaitable[Any]]


async def _truncated(request: web.Request, payload: Any) -> web.StreamResponse:
    part, whole = truncated_body(payload)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = whole
    await response.prepare(request)
    await response.write(part)
    if request.transport is not None:
        request.transport.close()
    return response


# -- Binance ------------------------------------------------------------------------------


def _binance_route(host: str, path: str) -> tuple[str, Handler | None]:
    if host == binance.SAPI_HOST and path in _BINANCE_SIGNED:
        return "markets", _BINANCE_SIGNED[path]
    for (product_host, prefix), (_kind, _max) in binance.PRODUCTS.items():
        if host == product_host and path.startswith(prefix):
            tail = path[len(prefix) :]
            if tail == "/exchangeInfo":
                return "markets", _binance_markets
            if tail == "/ticker/24hr":
                return "ticker", _binance_ticker
            if tail == "/klines":
                return "ohlcv", _binance_klines
    return "other", None


def _binance_product(host: str) -> tuple[str, int]:
    for (product_host, _prefix), product in binance.PRODUCTS.items():
        if host == product_host:
            return product
    raise _Reply(404, {"code": -1, "msg": "unknown host"})


def _binance_market(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    kind, _ = _binance_product(host)
    market = sim.book.find("binance", params.get("symbol", ""), kind)
    if market is None:
        raise _Reply(400, {"code": -1121, "msg": "Invalid symbol."})
    return market


async def _binance_markets(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    kind, _ = _binance_product(host)
    return binance.exchange_info(sim.book, kind)


def _signed(answer: Callable[[MarketBook], Any]) -> Handler:
    async def handler(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
        # The secret is not known here, so only the signature's presence is checked.
        if "signature" not in params or "timestamp" not in params:
            raise _Reply(
                400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
            )
        return answer(sim.book)

    return handler


async def _binance_ticker(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    return binance.ticker_24hr(sim.book, _binance_market(sim, host, params))


async def _binance_klines(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    market = _binance_market(sim, host, params)
    _, most = _binance_product(host)
    interval = params.get("interval", "")
    if interval not in binance.INTERVALS:
        raise _Reply(400, {"code": -1120, "msg": "Invalid interval."})
    limit = int(params.get("limit", "500"))
    if not 1 <= limit <= most:
        raise _Reply(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
    start = int(params["startTime"]) if "startTime" in params else None
    end = int(params["endTime"]) if "endTime" in params else None
    return binance.klines(sim.book, market, interval, start=start, end=end, limit=limit)


# -- Kraken -------------------------------------------------------------------------------


def _kraken_route(host: str, path: str) -> tuple[str, Handler | None]:
    return {
        "/0/public/Assets": ("markets", _kraken_assets),
        "/0/public/AssetPairs": ("markets", _kraken_pairs),
        "/0/public/Ticker": ("ticker", _kraken_ticker),
        "/0/public/OHLC": ("ohlcv", _kraken_ohlc),
    }.get(path, ("other", None))


async def _kraken_assets(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    return kraken.assets(sim.book)


async def _kraken_pairs(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    return kraken.asset_pairs(sim.book)


def _kraken_market(sim: ExchangeSim, params: dict[str, str]) -> Any:
    market = sim.book.find("kraken", params.get("pair", ""))
    if market is None:
        raise _Reply(200, kraken.error("EQuery:Unknown asset pair"))
    return market


async def _kraken_ticker(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    return kraken.ticker(sim.book, _kraken_market(sim, params))


async def _kraken_ohlc(sim: ExchangeSim, host: str, params: dict[str, str]) -> Any:
    market = _kraken_market(sim, params)
    interval = int(params.get("interval", "1"))
    if interval not in kraken.INTERVALS_MIN:
        raise _Reply(200, kraken.error("EGeneral:Invalid arguments"))
    since = int(params["since"]) if params.get("since") else None
    return kraken.ohlc(sim.book, market, interval, since)


_BINANCE_SIGNED: dict[str, Handler] = {
    binance.CAPITAL_CONFIG: _signed(binance.capital_config),
    binance.MARGIN_PAIRS: _signed(binance.margin_pairs),
    binance.ISOLATED_MARGIN_PAIRS: _signed(lambda book: binance.margin_pairs(book, isolated=True)),
}
_ROUTES: dict[str, Callable[[str, str], tuple[str, Handler | None]]] = {
    "binance": _binance_route,
    "kraken": _kraken_route,
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
