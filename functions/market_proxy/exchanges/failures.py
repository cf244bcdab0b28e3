"""The one translation of what goes wrong talking to an exchange (ccxt's exceptions, the
status of the answer, what its body says) into the client's errors (:mod:`market_proxy.errors`)."""

from __future__ import annotations

from market_proxy import errors
from market_proxy.exchanges.answer_size import too_large


def from_ccxt(
    exc: BaseException,
    exchange_id: str,
    *,
    retry_after: float | None = None,
    status: int | None = None,
    what: str = "ticker",
) -> errors.ProxyError:
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

    "No such market" (``unknown_market``, remembered for every container) is read only from
    an answer to a request about one market (``what`` the call was): a batch the exchange refuses
    because one of its symbols was just delisted says nothing of the others (the batch is
    :class:`errors.RejectedByExchange`, which its caller answers symbol by symbol), and a
    "not found" to the download of all markets is the exchange failing, not every market
    gone (:class:`errors.UpstreamUnavailable`, so the last snapshot is served meanwhile).
    """
    from ccxt.base import errors as ccxt_errors  # deferred: ccxt is heavy to import

    if not isinstance(exc, ccxt_errors.BaseError):
        return errors.UpstreamBadResponse(f"{exchange_id} sent an answer that could not be read")
    if status == 451 or _is_geo_block(str(exc)):
        return errors.UpstreamGeoBlocked(
            f"{exchange_id} refuses to serve the location this service runs in "
            "(a restricted location); deploy in a region it serves"
        )
    banned = status in (403, 418) and not isinstance(exc, ccxt_errors.AuthenticationError)
    if banned or (isinstance(exc, ccxt_errors.DDoSProtection) and _is_ban(str(exc))):
        return errors.UpstreamBanned(
            f"{exchange_id} has banned this service's address for a while",
            retry_after=retry_after or 60.0,
        )
    if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
        return errors.UpstreamRateLimited(
            f"{exchange_id} is rate limiting this service", retry_after=retry_after or 1.0
        )
    if isinstance(exc, ccxt_errors.RequestTimeout):
        return errors.UpstreamTimeout(
            f"{exchange_id} did not answer in time", retry_after=retry_after
        )
    cap = too_large(exc)
    if cap is not None:
        return errors.UpstreamBadResponse(
            f"{exchange_id} sent an answer larger than {cap} bytes, more than this kind of "
            "data can hold (UPSTREAM_MAX_BYTES)"
        )
    if isinstance(exc, ccxt_errors.BadResponse) or _payload_broken(exc):
        return errors.UpstreamBadResponse(f"{exchange_id} sent an answer that could not be read")
    unwell = status is not None and status >= 500
    if isinstance(exc, ccxt_errors.OperationFailed) or unwell or _transport_failed(exc):
        # Network errors, maintenance, and the exchange's own "unknown error, try again".
        return errors.UpstreamUnavailable(
            f"{exchange_id} is unavailable or unreachable", retry_after=retry_after or 5.0
        )
    if isinstance(exc, ccxt_errors.BadSymbol) or _no_such_market(exc, status):
        if what == "markets":
            return errors.UpstreamUnavailable(
                f"{exchange_id} answered its markets download with 'not found'",
                retry_after=retry_after or 5.0,
            )
        if what == "tickers":
            return errors.RejectedByExchange(f"{exchange_id} rejected the batch of symbols")
        return errors.UnknownMarket(f"{exchange_id} has no such market")
    if isinstance(exc, ccxt_errors.NotSupported):
        return errors.NotSupported(f"{exchange_id} does not offer this")
    if isinstance(exc, ccxt_errors.BadRequest):
        return errors.RejectedByExchange(f"{exchange_id} rejected the request")
    return errors.ProxyError(f"{exchange_id} answered with an error ({type(exc).__name__})")


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
