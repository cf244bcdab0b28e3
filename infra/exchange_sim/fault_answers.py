"""What Coinbase Exchange, Bybit and OKX send when they throttle, ban, fail or lag.

- Coinbase Exchange ("Rate limits" in its REST API docs): 429 ``{"message": "Public rate limit
  exceeded"}``. It documents no ban; its edge (Cloudflare) blocks an address with a 403 page
  ("Sorry, you have been blocked"). Failures: ``{"message": ...}`` with 500 or 503.
- Bybit (V5 "Rate Limit"): over the API limit, ``retCode`` 10006 "Too many visits!"; over the
  IP limit, "403, access too frequent" and the address is banned for at least ten minutes.
  A system failure is ``retCode`` 10016 ("System error. Please try again later.").
- OKX (API v5 "Error Code"): 429 with ``{"msg": "Too Many Requests", "code": "50011"}``. It
  documents no ban; its edge blocks an address with a 403 "Access Denied" page. Failures:
  50026 "System error", 50001 "Service temporarily unavailable".

``unknown_market``, for a market the exchange lists: Coinbase 404 ``{"message": "NotFound"}``,
Bybit ``retCode`` 10001 "Not supported symbols", OKX 51001 "Instrument ID does not exist".

An ``empty`` answer is the format's well-formed answer holding nothing, for the endpoint hit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Canned:
    """A prepared faulty answer."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


_BLOCKED = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>"
    "<h1>Sorry, you have been blocked</h1><h2>You are unable to access exchange.coinbase.com"
    "</h2></body></html>"
)
_ACCESS_DENIED = (
    "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
    "You don't have permission to access this server.</BODY></HTML>"
)


def _json(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Canned:
    return Canned(status, json.dumps(body), headers=headers)


def _coinbase(kind: str, endpoint: str, now_ms: int) -> Canned | None:
    match kind:
        case "429":
            return _json(429, {"message": "Public rate limit exceeded"})
        case "418":
            return Canned(403, _BLOCKED, "text/html")
        case "500":
            return _json(500, {"message": "Internal server error"})
        case "503":
            return _json(503, {"message": "Service Unavailable"})
        case "unknown_market":
            return _json(404, {"message": "NotFound"})
        case "empty":
            if endpoint == "orderbook":
                return _json(200, {"bids": [], "asks": [], "sequence": 0, "auction_mode": False})
            return _json(200, [] if endpoint in ("markets", "trades", "ohlcv") else {})
    return None


def _bybit_error(now_ms: int, code: int, message: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": now_ms}


def _bybit_empty(endpoint: str, now_ms: int) -> dict[str, Any]:
    result: dict[str, Any] = {"category": "", "list": []}
    if endpoint == "markets":
        result["nextPageCursor"] = ""
    elif endpoint == "ohlcv":
        result["symbol"] = ""
    elif endpoint == "orderbook":
        result = {"s": "", "b": [], "a": [], "ts": now_ms, "u": 0, "seq": 0, "cts": now_ms}
    elif endpoint == "other":
        result = {}
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms}


def _bybit(kind: str, endpoint: str, now_ms: int) -> Canned | None:
    limits = (
        ("X-Bapi-Limit", "600"),
        ("X-Bapi-Limit-Status", "0"),
        ("X-Bapi-Limit-Reset-Timestamp", str(now_ms + 1000)),
    )
    match kind:
        case "429":
            return _json(429, _bybit_error(now_ms, 10006, "Too many visits!"), limits)
        case "418":
            return Canned(403, "access too frequent", "text/plain")
        case "500":
            return _json(500, _bybit_error(now_ms, 10016, "System error. Please try again later."))
        case "503":
            return Canned(503, "Service Unavailable", "text/plain")
        case "unknown_market":
            return _json(200, _bybit_error(now_ms, 10001, "Not supported symbols"))
        case "empty":
            return _json(200, _bybit_empty(endpoint, now_ms))
    return None


def _okx(kind: str, endpoint: str, now_ms: int) -> Canned | None:
    match kind:
        case "429":
            return _json(429, {"msg": "Too Many Requests", "code": "50011"})
        case "418":
            return Canned(403, _ACCESS_DENIED, "text/html")
        case "500":
            return _json(
                500, {"code": "50026", "msg": "System error. Try again later.", "data": []}
            )
        case "503":
            body = {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
            return _json(503, body)
        case "unknown_market":
            return _json(200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []})
        case "empty":
            return _json(200, {"code": "0", "msg": "", "data": []})
    return None


SPECIFIC = {"coinbaseexchange": _coinbase, "bybit": _bybit, "okx": _okx}


def specific(exchange: str, kind: str, endpoint: str, now_ms: int) -> Canned | None:
    """The answer of ``exchange`` to a fault of ``kind`` where it has one of its own."""
    answer = SPECIFIC.get(exchange)
    return answer(kind, endpoint, now_ms) if answer is not None else None
