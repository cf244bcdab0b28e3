"""Every failure a client can meet (ccxt's exceptions are translated into them in
:mod:`market_proxy.exchanges.failures`).

Each error carries what its problem+json answer needs (RFC 9457): an HTTP status, a stable
machine-readable ``code``, whether retrying may help, and for throttling a ``Retry-After``.
The API layer renders them; nothing else decides a status code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


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
