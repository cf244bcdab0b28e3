"""Every use of ccxt beyond its unified API, in one place.

What is relied on (pinned by ``pyproject.toml``'s ccxt range, and checked by
``tests/unit/test_ccxt_contract.py``, which fails when a ccxt release changes it):

- ``on_rest_response(code, reason, url, method, headers, body, ...)`` is called just before
  the body of an HTTP answer is parsed, and ``parse_json(text)`` parses it;
- ``set_markets(markets, currencies)`` installs markets as ``load_markets`` would, and
  ``options['marketHelperProps']`` names the options ``load_markets`` fills besides them;
- ``on_rest_response`` runs in the task that made the request, with the answer's status and
  headers (so :func:`answer_seen` is this request's answer, whatever else runs meanwhile);
- an instance's transport is ``fetch(url, method, headers, body)``, and ``paginate`` pages
  through ``safe_deterministic_call`` (how :func:`requests_built` watches ``fetch_ohlcv``
  build its requests without sending them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Seen:
    """An HTTP answer an exchange sent: its status and headers (names as sent)."""

    status: int
    headers: Mapping[str, str]


# The last answer received in the current task (each asyncio task has its own).
_seen: ContextVar[Seen | None] = ContextVar("exchange_answer", default=None)


def forget_answer() -> None:
    """Before a request: no answer seen yet in this task."""
    _seen.set(None)


def answer_seen() -> Seen | None:
    """The answer the current task's last request received, or None when none came (a
    timeout, a dropped connection)."""
    return _seen.get()


# ccxt market fields never read when fetching market data; dropping them keeps the markets
# snapshot small (Binance's raw `info` alone is most of its megabytes).
_SNAPSHOT_DROP = ("info",)


def strict_json(client: Any) -> None:
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

    def on_rest_response(
        code: Any, reason: Any, url: Any, method: Any, headers: Any, *rest: Any
    ) -> Any:
        nonlocal answer_status
        answer_status = int(code) if str(code).isdigit() else 0
        _seen.set(Seen(answer_status, dict(headers or {})))
        return received(code, reason, url, method, headers, *rest)

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


def markets_snapshot(client: Any) -> dict[str, Any]:
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


def restore_markets(client: Any, snapshot: Mapping[str, Any]) -> None:
    """Install a :func:`markets_snapshot` as if ``load_markets`` had run."""
    client.set_markets(snapshot["markets"], snapshot.get("currencies") or None)
    client.options.update(snapshot.get("helpers") or {})


class _Captured(BaseException):
    """Raised by a probe's transport: the request is built, nothing is sent. A BaseException,
    so that no ``except Exception`` in an exchange's code can swallow it."""


async def requests_built(
    client: Any, market: Mapping[str, Any], calls: list[tuple[str, int | None, int | None, Any]]
) -> tuple[list[str | None], list[int]]:
    """What ccxt's own ``fetch_ohlcv`` for ``client``'s exchange sends for each call
    (timeframe, since, limit, params), without sending anything: the request (method, URL
    and body as one text; None where ccxt raised before building one), and the page size
    ccxt's own pagination uses for that market (empty when it has none).

    Relies on the instance's transport being ``fetch(url, method, headers, body)``, on
    ``set_markets`` and on ``safe_deterministic_call`` being what ``paginate`` pages through.
    A probe client of the same class is made for this; the live client is not touched.
    """
    probe = type(client)({"enableRateLimit": False, "timeout_on_exit": 0})
    frozen = client.milliseconds()
    probe.milliseconds = lambda: frozen
    probe.seconds = lambda: frozen // 1000
    probe.microseconds = lambda: frozen * 1000
    probe.set_markets([dict(market)])
    probe.options.update({k: v for k, v in client.options.items() if k == "defaultType"})
    seen: list[str] = []

    async def transport(
        url: Any, method: Any = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        seen.append(f"{method} {url} {body}")
        raise _Captured

    entries: list[int] = []

    async def paged(method: Any, symbol: Any, since: Any, limit: Any, *rest: Any) -> list[Any]:
        if isinstance(limit, int):
            entries.append(limit)
        return []

    probe.fetch = transport
    probe.safe_deterministic_call = paged
    built: list[str | None] = []
    for timeframe, since, limit, params in calls:
        seen.clear()
        with contextlib.suppress(_Captured, Exception):  # a refusal: nothing to compare
            await probe.fetch_ohlcv(market["symbol"], timeframe, since, limit, dict(params))
        built.append(seen[-1] if seen else None)
    if calls:
        timeframe, since = calls[0][0], calls[0][1]
        with contextlib.suppress(_Captured, Exception):  # no pagination for this market
            await probe.fetch_ohlcv(market["symbol"], timeframe, since, None, {"paginate": True})
    return built, entries


def meter(client: Any, queue: Any) -> None:
    """Run each request ccxt makes for ``client`` through ``await queue(cost, limiter)``:
    ``cost`` is ccxt's cost of that request (its endpoint weight), and ``await limiter()``
    waits in ccxt's own rate limiter, which ``queue`` calls where it must.

    Relies on ccxt's ``fetch2`` awaiting ``self.throttle(cost)`` before every request while
    ``enableRateLimit`` is on (the service always leaves it on).
    """
    limiter = client.throttle

    async def throttle(cost: Any = None) -> Any:
        weight = float(cost) if isinstance(cost, int | float) and cost > 0 else 1.0
        return await queue(weight, lambda: limiter(cost))

    client.throttle = throttle
