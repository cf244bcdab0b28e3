"""The gateway to the exchanges: one ccxt async client per exchange per container.

Clients are created on first use and kept for the life of the container, so their HTTP
sessions, rate limiters and markets are reused across invocations. Markets come from the
shared cache's snapshot when it is young enough, else from the exchange, once. Every ccxt
exception leaves this module already translated (see :func:`errors.from_ccxt`), and every
upstream call passes one circuit breaker per exchange (see :mod:`market_proxy.circuit`).

Credentials in ``EXCHANGE_OPTIONS`` reach ccxt and nothing else: client-facing details are
written by :func:`errors.from_ccxt`, logs get ccxt's messages with configured secrets masked,
ccxt's own request logging (which prints request headers) is kept below DEBUG, and its
``verbose`` mode (which prints them to stdout) is refused.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from market_proxy import errors
from market_proxy.cache.engine import CacheEngine, now_ms
from market_proxy.cache.entry import Cached
from market_proxy.circuit import CircuitBreaker
from market_proxy.observability import Stopwatch, count, latency, logger, traced
from market_proxy.settings import Settings
from market_proxy.symbols import SymbolIndex

T = TypeVar("T")

# ccxt market fields never read when fetching tickers or candles; dropping them keeps the
# markets snapshot small (Binance's raw `info` alone is most of its megabytes).
_SNAPSHOT_DROP = ("info",)

# ccxt config keys whose values are secrets (ccxt's `requiredCredentials`), and keys whose
# values may embed them (a proxy URL's user:password, a private gateway's token).
_CREDENTIAL_KEYS = frozenset(
    {"apikey", "secret", "password", "uid", "login", "privatekey", "walletaddress", "token"}
    | {"twofa", "accountid"}
)
_PROXY_KEYS = frozenset(
    {"proxy", "proxyurl", "httpproxy", "httpsproxy", "socksproxy", "wsproxy", "wssproxy"}
    | {"aiohttp_proxy", "proxy_url", "http_proxy", "https_proxy", "socks_proxy"}
)
_SHORTEST_SECRET = 4  # shorter values would mask half of every message and hide nothing
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_MASK = "***"


@dataclass
class Venue:
    """One exchange as this container knows it."""

    id: str
    client: Any  # a ccxt.async_support.Exchange
    symbols: SymbolIndex
    markets_fresh_until: int

    @property
    def ohlcv_page_limit(self) -> int:
        return ohlcv_page_limit(self.client)


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


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        held = merged.get(key)
        if isinstance(held, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(held, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def exchange_class(exchange_id: str) -> Any:
    """The ccxt async class for ``exchange_id`` (imports ccxt on first use)."""
    module = importlib.import_module("ccxt.async_support")
    return getattr(module, exchange_id, None)


class ExchangeGateway:
    def __init__(
        self, settings: Settings, cache: CacheEngine, clock: Callable[[], int] = now_ms
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cache = cache
        self._venues: dict[str, Venue] = {}
        self._opening: dict[str, asyncio.Task[Venue]] = {}
        self._clients: dict[str, Any] = {}
        self.circuits = CircuitBreaker(
            threshold=settings.circuit_failure_threshold,
            window_s=settings.circuit_window_seconds,
            cooldown_s=settings.circuit_cooldown_seconds,
            clock=clock,
        )
        self._secrets = tuple(
            sorted(set(secret_values(settings.exchange_options)), key=len, reverse=True)
        )

    @property
    def allowed(self) -> tuple[str, ...]:
        return self._settings.exchanges

    def check_allowed(self, exchange_id: str) -> str:
        """The allow-listed id ``exchange_id`` names (any case), or :class:`UnknownExchange`."""
        normalized = exchange_id.strip().lower()
        if normalized not in self._settings.exchanges:
            raise errors.UnknownExchange(
                f"{exchange_id[:64]!r} is not served here",
                extra={"valid": list(self._settings.exchanges)},
            )
        return normalized

    def client(self, exchange_id: str) -> Any:
        """The container's ccxt client for an allow-listed exchange, created on first use."""
        client = self._clients.get(exchange_id)
        if client is None:
            cls = exchange_class(exchange_id)
            if cls is None:
                raise errors.UnknownExchange(f"ccxt has no exchange {exchange_id!r}")
            config = deep_merge(
                {"enableRateLimit": True, "timeout": self._settings.upstream_timeout_ms},
                self._settings.exchange_options.get(exchange_id, {}),
            )
            if config.pop("verbose", False):
                logger.warning(
                    "EXCHANGE_OPTIONS asks for ccxt's verbose mode, which prints request "
                    "headers (credentials included) to stdout; ignored",
                    extra={"exchange": exchange_id},
                )
            _quiet_ccxt_logging()
            client = cls(config)
            _strict_json(client)
            self._clients[exchange_id] = client
        return client

    async def venue(self, exchange_id: str) -> Venue:
        """The exchange with its markets loaded; markets are refreshed once they go stale."""
        exchange_id = self.check_allowed(exchange_id)
        venue = self._venues.get(exchange_id)
        if venue is not None and self._clock() < venue.markets_fresh_until:
            return venue
        task = self._opening.get(exchange_id)
        if task is None:
            task = asyncio.create_task(self._open(exchange_id))
            self._opening[exchange_id] = task
            task.add_done_callback(lambda _t: self._opening.pop(exchange_id, None))
        try:
            return await asyncio.shield(task)
        except errors.ProxyError:
            if venue is not None:
                return venue  # markets a little old beat no answer
            raise

    async def _open(self, exchange_id: str) -> Venue:
        cached = await self._cache.get(
            _markets_key(exchange_id), self._settings.markets_policy, self._downloader(exchange_id)
        )
        return self._install(exchange_id, cached)

    async def warm_markets(self, exchange_id: str, *, unless_fresh_for_s: float) -> Cached | None:
        """Refresh the markets snapshot unless it stays fresh that long (the warmer's job).

        Returns None when nothing was needed. Raises :class:`errors.ProxyError`.
        """
        exchange_id = self.check_allowed(exchange_id)
        cached = await self._cache.refresh(
            _markets_key(exchange_id),
            self._settings.markets_policy,
            self._downloader(exchange_id),
            unless_fresh_for_s=unless_fresh_for_s,
        )
        if cached is not None:
            self._install(exchange_id, cached)
        return cached

    def _downloader(self, exchange_id: str) -> Callable[[], Awaitable[dict[str, Any]]]:
        client = self.client(exchange_id)

        async def download() -> dict[str, Any]:
            await self.call(exchange_id, "markets", lambda: client.load_markets(reload=True))
            if not client.markets:
                raise errors.UpstreamBadResponse(f"{exchange_id}: the exchange listed no markets")
            return _snapshot(client)

        return download

    def _install(self, exchange_id: str, cached: Cached) -> Venue:
        client = self.client(exchange_id)
        if cached.source != "upstream":
            _restore(client, cached.payload)
            latency("MarketsSnapshotAge", cached.age_ms, exchange=exchange_id)
        logger.info(
            "markets ready",
            extra={"exchange": exchange_id, "source": cached.source, "age_ms": cached.age_ms},
        )
        count(f"MarketsFrom{cached.source.upper()}", exchange=exchange_id)
        venue = Venue(
            id=exchange_id,
            client=client,
            symbols=SymbolIndex(client.markets),
            markets_fresh_until=cached.entry.fresh_until,
        )
        self._venues[exchange_id] = venue
        return venue

    async def call(self, exchange_id: str, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream request, timed, counted and with its errors translated.

        Costs at most one upstream request (aiohttp itself repeats an idempotent GET once when
        the connection drops before an answer). Raises :class:`errors.CircuitOpen` without
        calling while the exchange's circuit is open, and otherwise the translation of what
        went wrong (:class:`errors.ProxyError`); the outcome feeds the circuit.
        """
        client = self.client(exchange_id)
        attempt = self.circuits.admit(exchange_id)
        count("UpstreamCalls", exchange=exchange_id)
        elapsed = Stopwatch()
        try:
            async with traced(f"## upstream {what}", exchange=exchange_id, call=what):
                result = await request()
        except errors.ProxyError as failure:
            attempt.failed(failure)
            raise
        except Exception as exc:
            # Only an error raised on reading an answer's status comes with that answer's
            # headers; after a timeout, a dropped connection or a body that would not
            # parse, the client's last headers belong to some earlier request.
            answered = exc.__cause__ is None and exc.__context__ is None
            asked = _retry_after(client.last_response_headers) if answered else None
            error = errors.from_ccxt(exc, exchange_id, retry_after=asked)
            paused = attempt.failed(error, retry_after=asked)
            if paused is not None:
                error.retry_after = paused  # no call will be made before then
            count("UpstreamErrors", exchange=exchange_id)
            logger.warning(
                "upstream call failed",
                extra={
                    "exchange": exchange_id,
                    "what": what,
                    "code": error.code,
                    "error": f"{type(exc).__name__}: {self.masked(str(exc))}"[:500],
                },
            )
            raise error from exc
        else:
            attempt.succeeded()
            return result
        finally:
            attempt.release()
            latency("UpstreamLatency", elapsed.ms, exchange=exchange_id)

    def masked(self, text: str) -> str:
        """``text`` with every configured credential and any URL's user:password masked."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return _URL_USERINFO.sub(_MASK + "@", text)

    async def close(self) -> None:
        """Close every client's HTTP session (a process shutting down)."""
        clients, self._clients = list(self._clients.values()), {}
        self._venues.clear()
        for client in clients:
            await client.close()

    async def suspend(self) -> None:
        """Close the clients' HTTP sessions but keep the clients and their markets.

        Before a SnapStart snapshot: a connection in the snapshot would be dead (or shared by
        every container restored from it) when it is used again.
        """
        for client in self._clients.values():
            await client.close()

    def resume(self) -> None:
        """Give every client a new HTTP session (after a SnapStart restore; on the loop)."""
        for client in self._clients.values():
            client.open()  # ccxt's requests refuse a client closed by its owner until reopened


def secret_values(options: Mapping[str, Any]) -> Iterator[str]:
    """Every credential found in ccxt options (``EXCHANGE_OPTIONS``), at any depth:
    values of credential and proxy keys, and every header value."""
    for key, value in options.items():
        name = str(key).lower()
        if isinstance(value, Mapping):
            if name == "headers":
                yield from (str(v) for v in value.values() if len(str(v)) >= _SHORTEST_SECRET)
            yield from secret_values(value)
        elif (name in _CREDENTIAL_KEYS or name in _PROXY_KEYS) and value:
            text = str(value)
            if len(text) >= _SHORTEST_SECRET:
                yield text


def _quiet_ccxt_logging() -> None:
    """ccxt logs every request's headers (an API key among them) at DEBUG: whatever level
    the process logs at (a Lambda function's log level can be set to DEBUG), not those."""
    ccxt_logger = logging.getLogger("ccxt")
    if ccxt_logger.level < logging.INFO:  # NOTSET too: it would follow the root logger down
        ccxt_logger.setLevel(logging.INFO)


def _strict_json(client: Any) -> None:
    """Make an answer whose body looks like JSON but does not parse, or a successful answer
    that is a page of HTML (a captive portal, a CDN's page sent as a 200), an error
    (``BadResponse``).

    ccxt reads such a body as no body at all, and its parsers then build a ticker of nulls
    or an empty page of candles, which the cache would keep as a known gap in history. Only
    the body of an HTTP answer is judged so: ccxt calls ``on_rest_response`` just before
    parsing it (synchronously, so no other request comes between), while exchange code
    that parses JSON embedded in fields keeps ccxt's lenient reading. An HTML page with an
    error status is left to ccxt, which maps the status (a 503 stays "unavailable").
    """
    from ccxt.base.errors import BadResponse

    decode, lenient, received = client.on_json_response, client.parse_json, client.on_rest_response
    answer_status: int | None = None

    def on_rest_response(code: Any, *args: Any) -> Any:
        nonlocal answer_status
        answer_status = int(code) if str(code).isdigit() else 0
        return received(code, *args)

    def parse_json(text: Any) -> Any:
        nonlocal answer_status
        status, answer_status = answer_status, None
        if status is None:
            return lenient(text)
        if isinstance(text, str) and text[:1] in ("{", "["):
            try:
                return decode(text)
            except ValueError:
                raise BadResponse(f"{client.id} sent malformed JSON") from None
        if 200 <= status < 300 and isinstance(text, str) and text[:1] == "<":
            raise BadResponse(f"{client.id} sent a page of HTML")
        return None

    client.on_rest_response = on_rest_response
    client.parse_json = parse_json


def _markets_key(exchange_id: str) -> str:
    return f"markets#{exchange_id}"


def _snapshot(client: Any) -> dict[str, Any]:
    """What a new container needs to skip ``load_markets``: markets, currencies, helpers."""
    markets = [
        {k: v for k, v in market.items() if k not in _SNAPSHOT_DROP}
        for market in client.markets.values()
    ]
    currencies = {
        code: {k: v for k, v in currency.items() if k not in _SNAPSHOT_DROP}
        for code, currency in (client.currencies or {}).items()
    }
    helpers = {
        name: client.options[name]
        for name in client.options.get("marketHelperProps", [])
        if client.options.get(name) is not None
    }
    return {"markets": markets, "currencies": currencies, "helpers": helpers}


def _restore(client: Any, snapshot: Mapping[str, Any]) -> None:
    client.set_markets(snapshot["markets"], snapshot.get("currencies") or None)
    client.options.update(snapshot.get("helpers") or {})


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
