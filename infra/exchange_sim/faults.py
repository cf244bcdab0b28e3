"""Injected faults: what each exchange really sends when things go wrong.

Per request, consumed in the order injected. Kinds (Binance's and Kraken's answers below;
Coinbase Exchange's, Bybit's and OKX's in fault_answers.py):

- ``timeout``: the request is held open (``delay_s``, default 30 s) past the client's timeout.
- ``reset``: the connection is dropped without an answer.
- ``429``: throttled, with ``Retry-After``. Binance: ``{"code":-1003,...}``; Kraken (behind
  Cloudflare): ``{"error":["EAPI:Rate limit exceeded"]}``.
- ``418``: Binance's IP ban (``Way too many requests; IP banned until …``, ``Retry-After``);
  Kraken has no 418: its ban is ``EGeneral:Temporary lockout``, sent with the same status.
- ``500``: Binance ``{"code":-1000,"msg":"An unknown error occured…"}``; Kraken
  ``{"error":["EGeneral:Internal error"]}``.
- ``502``: a load balancer's HTML page, as both put in front of their APIs.
- ``503``: Binance's text ``Service Unavailable``; Kraken ``{"error":["EService:Unavailable"]}``.
- ``malformed_json``: 200 with a JSON content type and a body that is not JSON.
- ``html_maintenance``: 503 with an HTML maintenance page (what a CDN shows during maintenance).
- ``html_200``: 200 with an HTML page (a captive portal, or a CDN's error page sent as a 200).
- ``empty``: 200 with a well-formed answer holding nothing (Binance ``[]``; Kraken a result
  with no rows; the others the empty answer of the endpoint hit), as an exchange's replica
  that has not caught up may send.
- ``truncated``: 200 whose body stops before its ``Content-Length``.
- ``unknown_market``: the exchange's "no such market" for a market it lists (an index
  that lags a listing): Binance 400 ``{"code":-1121,"msg":"Invalid symbol."}``; Kraken 200
  ``{"error":["EQuery:Unknown asset pair"]}``, which ccxt maps to no error of its own.
- ``nonfinite``: the endpoint's real answer with every decimal number (prices, amounts,
  volumes) sent as ``1e309``, past what a double holds (it reads as infinity).
- ``negative``: the endpoint's real answer with every decimal number negated.
- ``huge``: 200 with a JSON body of ``size_bytes`` (default 64 MiB), streamed (the
  simulator never holds it).

``retry_after`` is sent as given: a number, or any text (``inf``, ``1e300``, a date).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from typing import Any

from infra.exchange_sim.fault_answers import Canned, specific

__all__ = [
    "ALTERED",
    "KINDS",
    "Canned",
    "Fault",
    "FaultQueue",
    "altered_body",
    "canned",
    "truncated_body",
]

KINDS = (
    "timeout",
    "reset",
    "429",
    "418",
    "500",
    "502",
    "503",
    "malformed_json",
    "html_maintenance",
    "html_200",
    "empty",
    "truncated",
    "unknown_market",
    "nonfinite",
    "negative",
    "huge",
)
# Kinds answered from the endpoint's real answer, changed.
ALTERED = ("nonfinite", "negative")


@dataclass
class Fault:
    exchange: str
    kind: str
    endpoint: str | None
    times: int
    retry_after: int | str | None
    delay_s: float | None
    size_bytes: int | None = None


class FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault {fault.kind!r}; one of {', '.join(KINDS)}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, exchange: str, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.exchange == exchange and fault.endpoint in (None, endpoint):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


_BINANCE_THROTTLED = (
    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
    "Please use the websocket for live updates to avoid polling the API."
)
_BINANCE_BANNED = (
    "Way too many requests; IP(127.0.0.1) banned until 1893456000000. "
    "Please use the websocket for live updates to avoid bans."
)
_HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center></body></html>"
)
_HTML_MAINTENANCE = (
    "<!DOCTYPE html><html><head><title>System maintenance</title></head><body>"
    "<h1>We'll be back soon</h1><p>The system is undergoing scheduled maintenance.</p>"
    "</body></html>"
)


def canned(exchange: str, fault: Fault, endpoint: str = "other", now_ms: int = 0) -> Canned:
    """The answer an exchange sends for ``fault`` (every kind but timeout, reset, truncated)
    on ``endpoint``; throttling and bans carry the injected ``Retry-After``."""
    retry = (("Retry-After", str(fault.retry_after if fault.retry_after is not None else 1)),)
    own = specific(exchange, fault.kind, endpoint, now_ms)
    if own is not None:
        if fault.kind in ("429", "418"):
            return replace(own, headers=(*own.headers, *retry))
        return own
    binance = exchange == "binance"
    match fault.kind:
        case "429":
            body = (
                {
                    "code": -1003,
                    "msg": _BINANCE_THROTTLED,
                }
                if binance
                else {"error": ["EAPI:Rate limit exceeded"]}
            )
            return Canned(429, json.dumps(body), headers=retry)
        case "418":
            body = (
                {
                    "code": -1003,
                    "msg": _BINANCE_BANNED,
                }
                if binance
                else {"error": ["EGeneral:Temporary lockout"]}
            )
            return Canned(418, json.dumps(body), headers=retry)
        case "500":
            body = (
                {"code": -1000, "msg": "An unknown error occured while processing the request."}
                if binance
                else {"error": ["EGeneral:Internal error"]}
            )
            return Canned(500, json.dumps(body))
        case "502":
            return Canned(502, _HTML_502, "text/html")
        case "503":
            if binance:
                return Canned(503, "Service Unavailable", "text/plain")
            return Canned(503, json.dumps({"error": ["EService:Unavailable"]}))
        case "malformed_json":
            return Canned(200, '{"symbol": "BTCUSDT", "lastPrice": 60000.0,, "result": }')
        case "html_maintenance":
            return Canned(503, _HTML_MAINTENANCE, "text/html")
        case "html_200":
            return Canned(200, _HTML_MAINTENANCE, "text/html")
        case "empty":
            return Canned(200, "[]" if binance else json.dumps({"error": [], "result": {}}))
        case "unknown_market":
            if binance:
                return Canned(400, json.dumps({"code": -1121, "msg": "Invalid symbol."}))
            return Canned(200, json.dumps({"error": ["EQuery:Unknown asset pair"]}))
    raise ValueError(f"{fault.kind} has no canned answer")


_NONFINITE = "1e309"
_PLACEHOLDER = "@@nonfinite@@"


def altered_body(kind: str, payload: Any) -> str:
    """``payload``'s JSON with every decimal number (a float, or a string holding one with a
    decimal point) sent as ``1e309`` (``nonfinite``: a bare number where the exchange sends
    numbers, a string where it sends strings) or negated (``negative``); integers (times,
    ids, counts) are left alone."""

    def alter(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: alter(item) for key, item in value.items()}
        if isinstance(value, list):
            return [alter(item) for item in value]
        if isinstance(value, float) or (isinstance(value, str) and _decimal(value)):
            if kind == "nonfinite":
                return _NONFINITE if isinstance(value, str) else _PLACEHOLDER
            return f"-{value}" if isinstance(value, str) else -value
        return value

    # json.dumps writes an infinite float as Infinity, not as the number an exchange sent.
    return json.dumps(alter(payload)).replace(f'"{_PLACEHOLDER}"', _NONFINITE)


def _decimal(text: str) -> bool:
    if "." not in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def truncated_body(payload: Any) -> tuple[bytes, int]:
    """The first half of ``payload``'s JSON and the length the whole would have had."""
    whole = json.dumps(payload).encode()
    return whole[: max(1, len(whole) // 2)], len(whole)
