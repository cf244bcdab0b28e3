"""Every failure a client can meet, and the one translation of ccxt's exceptions into them.

Each error carries what its problem+json answer needs (RFC 9457): an HTTP status, a stable
machine-readable ``code``, whether retrying may help, and for throttling a ``Retry-After``.
The API layer renders them; nothing else decides a status code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from market_proxy.exchanges.answer_size import too_large


class ProxyError(Exception):
    """Base of every error the service answers with."""

    status: ClassVar[int] = 502
    code: ClassVar[str] = "upstream_error"
    title: ClassVar[str] = "The exchange answered with an error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.extra: dict[str, Any] = dict(extra or {})

    def problem(self) -> dict[str, Any]:
        """This error as problem details (RFC 9457's members, with ``code``, ``retryable``
        and what it adds), for answers that hold several outcomes and for every transport."""
        body: dict[str, Any] = {
            "code": self.code,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "retryable": self.retryable,
            **self.extra,
        }
        header = self.retry_after_header
        if header is not None:
            body["retry_after"] = int(header)
        return body

    @property
    def retry_after_header(self) -> str | None:
        """``Retry-After`` in whole seconds, rounded up, or None when it does not apply."""
        if self.retry_after is None:
            return None
        return str(max(1, math.ceil(self.retry_after)))


class UnknownExchange(ProxyError):
    status = 404
    code = "unknown_exchange"
    title = "This exchange is not served"


class UnknownMarket(ProxyError):
    status = 404
    code = "unknown_market"
    title = "The exchange has no such market"


class InvalidParameter(ProxyError):
    status = 400
    code = "invalid_parameter"
    title = "A parameter is not valid"

    def __init__(
        self, parameter: str, detail: str, *, valid: Sequence[Any] | str | None = None
    ) -> None:
        extra: dict[str, Any] = {"parameter": parameter}
        if valid is not None:
            extra["valid"] = valid if isinstance(valid, str) else list(valid)
        super().__init__(detail, extra=extra)


class InvalidRequest(ProxyError):
    """A parameter of the wrong type or length (the framework's validation)."""

    status = 422
    code = "invalid_request"
    title = "The request is not valid"


class MalformedRequest(ProxyError):
    """What reached the function cannot be read as an HTTP request (a malformed event)."""

    status = 400
    code = "malformed_request"
    title = "The request could not be read"


class RouteNotFound(ProxyError):
    status = 404
    code = "not_found"
    title = "No such route"


class MethodNotAllowed(ProxyError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class InternalError(ProxyError):
    """A bug of the service's own (never something a client or an exchange did)."""

    status = 500
    code = "internal_error"
    title = "Internal error"
    retryable = True


class NotSupported(ProxyError):
    status = 501
    code = "not_supported"
    title = "The exchange does not offer this"


class RejectedByExchange(ProxyError):
    status = 400
    code = "rejected_by_exchange"
    title = "The exchange rejected the request"


class UpstreamRateLimited(ProxyError):
    status = 429
    code = "upstream_rate_limited"
    title = "The exchange is rate limiting us"
    retryable = True


class UpstreamUnavailable(ProxyError):
    status = 503
    code = "upstream_unavailable"
    title = "The exchange is unavailable"
    retryable = True


class UpstreamBanned(UpstreamUnavailable):
    code = "upstream_banned"
    title = "The exchange has banned our address for a while"


class UpstreamBusy(UpstreamUnavailable):
    code = "upstream_busy"
    title = "This service's calls to the exchange are at their limit for now"


class UpstreamGeoBlocked(ProxyError):
    """The exchange refuses to serve where this service runs: not a passing failure."""

    status = 451
    code = "upstream_geo_blocked"
    title = "The exchange does not serve this service's location"


class CircuitOpen(UpstreamUnavailable):
    code = "circuit_open"
    title = "Calls to this exchange are paused after repeated failures"


class UpstreamTimeout(ProxyError):
    status = 504
    code = "upstream_timeout"
    title = "The exchange did not answer in time"
    retryable = True


class UpstreamBadResponse(ProxyError):
    status = 502
    code = "upstream_bad_response"
    title = "The exchange sent an answer that could not be read"
    retryable = True


def from_ccxt(
    exc: BaseException,
    exchange_id: str,
    *,
    retry_after: float | None = None,
    status: int | None = None,
) -> ProxyError:
    """Translate one exception raised while talking to an exchange into the client's error.

    ``retry_after`` is the exchange's own ``Retry-After`` when it sent one, ``status`` the
    HTTP status of the answer that failed (None when none came). ccxt raises
    ``DDoSProtection`` both for throttling and for bans (Binance's 418, Kraken's "Temporary
    lockout"); the message tells them apart. An exchange's 418, and a 403 to a request for
    public data (a CDN's block page, Bybit's "access too frequent"), are bans whatever ccxt
    makes of them; a 5xx is the exchange being unwell, whatever its body says. Anything that
    is not a ccxt error was raised while parsing what the exchange sent, so it is a bad
    response, not our failure.

    The detail is written here, never copied from the exception: ccxt's messages carry the
    request URL and the exchange's raw body, which are not the client's business and may
    hold what an operator configured (a proxy's credentials, a private API URL).
    """
    from ccxt.base import errors as ccxt_errors  # deferred: ccxt is heavy to import

    if not isinstance(exc, ccxt_errors.BaseError):
        return UpstreamBadResponse(f"{exchange_id} sent an answer that could not be read")
    if status == 451 or _is_geo_block(str(exc)):
        return UpstreamGeoBlocked(
            f"{exchange_id} refuses to serve the location this service runs in "
            "(a restricted location); deploy in a region it serves"
        )
    banned = status in (403, 418) and not isinstance(exc, ccxt_errors.AuthenticationError)
    if banned or (isinstance(exc, ccxt_errors.DDoSProtection) and _is_ban(str(exc))):
        return UpstreamBanned(
            f"{exchange_id} has banned this service's address for a while",
            retry_after=retry_after or 60.0,
        )
    if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
        return UpstreamRateLimited(
            f"{exchange_id} is rate limiting this service", retry_after=retry_after or 1.0
        )
    if isinstance(exc, ccxt_errors.RequestTimeout):
        return UpstreamTimeout(f"{exchange_id} did not answer in time", retry_after=retry_after)
    cap = too_large(exc)
    if cap is not None:
        return UpstreamBadResponse(
            f"{exchange_id} sent an answer larger than {cap} bytes, more than this kind of "
            "data can hold (UPSTREAM_MAX_BYTES)"
        )
    if isinstance(exc, ccxt_errors.BadResponse) or _payload_broken(exc):
        return UpstreamBadResponse(f"{exchange_id} sent an answer that could not be read")
    unwell = status is not None and status >= 500
    if isinstance(exc, ccxt_errors.OperationFailed) or unwell or _transport_failed(exc):
        # Network errors, maintenance, and the exchange's own "unknown error, try again".
        return UpstreamUnavailable(
            f"{exchange_id} is unavailable or unreachable", retry_after=retry_after or 5.0
        )
    if isinstance(exc, ccxt_errors.BadSymbol) or _no_such_market(exc, status):
        return UnknownMarket(f"{exchange_id} has no such market")
    if isinstance(exc, ccxt_errors.NotSupported):
        return NotSupported(f"{exchange_id} does not offer this")
    if isinstance(exc, ccxt_errors.BadRequest):
        return RejectedByExchange(f"{exchange_id} rejected the request")
    return ProxyError(f"{exchange_id} answered with an error ({type(exc).__name__})")


_GEO_BLOCK = ("restricted location", "not available in your country", "your country or region")


def _is_geo_block(message: str) -> bool:
    lowered = message.lower()
    return any(words in lowered for words in _GEO_BLOCK)


# What exchanges say of a market they do not have, where ccxt does not map it to BadSymbol
# (Kraken's "EQuery:Unknown asset pair", Coinbase's 404 "NotFound", which ccxt reads as an
# order that was not found).
_NO_SUCH_MARKET = (
    "unknown asset pair",
    "unknown pair",
    "invalid pair",
    "invalid symbol",
    "unknown symbol",
    "symbol not found",
    "symbol invalid",
    "not supported symbol",
    "market not found",
    "no such market",
    "instrument id does not exist",
    "instrument not found",
    "product not found",
    "notfound",
)


def _no_such_market(exc: BaseException, status: int | None) -> bool:
    """An exchange's own way of saying it has no such market, to a request for public data
    about one market (a 404, an order "not found", or the words)."""
    from ccxt.base import errors as ccxt_errors

    if status == 404 or isinstance(exc, ccxt_errors.OrderNotFound):
        return True
    lowered = str(exc).lower()
    return any(words in lowered for words in _NO_SUCH_MARKET)


def _is_ban(message: str) -> bool:
    lowered = f" {message.lower()} "
    return " 418 " in lowered or "banned" in lowered or "lockout" in lowered


def _payload_broken(exc: BaseException) -> bool:
    """ccxt wraps a body cut short (aiohttp's ClientPayloadError) as a plain ExchangeError."""
    from aiohttp import ClientPayloadError

    return isinstance(exc.__cause__, ClientPayloadError)


def _transport_failed(exc: BaseException) -> bool:
    from aiohttp import ClientError

    return isinstance(exc.__cause__, ClientError | OSError)


def rebuild(code: str, detail: str, *, retry_after: float | None = None) -> ProxyError:
    """The error a remembered failure stands for (see the cache engine's error memory)."""
    kind = _BY_CODE.get(code, ProxyError)
    return kind(detail, retry_after=retry_after)


def kinds() -> list[type[ProxyError]]:
    """Every error class, the base included."""
    found: list[type[ProxyError]] = []
    pending: list[type[ProxyError]] = [ProxyError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found


# What is about one client's request is never remembered for others.
_REQUEST_ONLY = (
    InvalidParameter,
    InvalidRequest,
    MalformedRequest,
    RouteNotFound,
    MethodNotAllowed,
    InternalError,
)
_BY_CODE = {kind.code: kind for kind in kinds() if kind not in _REQUEST_ONLY}
