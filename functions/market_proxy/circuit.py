"""A circuit breaker per exchange: after a ban or a run of failures, stop calling for a while.

Closed, calls pass and failures in a row are counted. Open, calls are refused at once with
:class:`errors.CircuitOpen`, whose ``Retry-After`` is the cool-down left. Once the cool-down
has passed the circuit is half-open: one call goes through as a probe while the others are
still refused; the probe's success closes the circuit, its failure opens it again.

What opens it: a ban (Binance's 418, Kraken's lockout) at once, for the ban's ``Retry-After``
or the configured cool-down; otherwise ``threshold`` failures in a row within ``window``.
A failure is an error that says the exchange is unwell right now (``retryable``: down,
timeout, unreadable answer, rate limit); "no such market" and other answers the exchange gave
on purpose count as success.

State is kept per container, in memory. A shared record would cost a table read on every
upstream call to save, per ban, one refused call per container; and containers do not
always share an egress address, so one's ban is not proof of another's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from market_proxy import errors
from market_proxy.observability import count, logger

# What a refused caller is told to wait while a probe is in flight: about one round trip.
PROBE_RETRY_AFTER_S = 1.0


@dataclass
class _Circuit:
    failures: deque[int] = field(default_factory=deque)  # when each failure in a row happened
    open_until: int | None = None  # None: closed
    reason: str = ""  # code of the failure that opened it
    probing: bool = False


class Attempt:
    """Leave to make one upstream call; report how it went exactly once."""

    def __init__(self, breaker: CircuitBreaker, exchange_id: str, *, probe: bool) -> None:
        self._breaker = breaker
        self.exchange_id = exchange_id
        self.probe = probe
        self._done = False

    def succeeded(self) -> None:
        """The exchange answered (any answer it meant to give)."""
        if not self._done:
            self._done = True
            self._breaker._succeeded(self)

    def failed(self, error: errors.ProxyError, *, retry_after: float | None = None) -> float | None:
        """The call failed with ``error``; ``retry_after`` is the exchange's own, if it sent one.

        Returns the seconds calls are now paused for when this failure opened the circuit
        (the truthful ``Retry-After`` for its caller), else None. Errors that are not the
        exchange's fault right now (not ``retryable``) count as success, but for a geo-block,
        which lasts: it opens the circuit for ``geo_block_s``. The service's own refusal to
        call (its fleet budget spent) says nothing about the exchange: no verdict.
        """
        if isinstance(error, errors.UpstreamBusy):
            self.release()
            return None
        if not error.retryable and not isinstance(error, errors.UpstreamGeoBlocked):
            self.succeeded()
            return None
        if self._done:
            return None
        self._done = True
        return self._breaker._failed(self, error, retry_after)

    def release(self) -> None:
        """The call ended without a verdict (cancelled): a probe's place goes to the next."""
        if not self._done:
            self._done = True
            self._breaker._released(self)


class CircuitBreaker:
    """The circuits of every exchange of one container; ``clock`` gives epoch milliseconds."""

    def __init__(
        self,
        *,
        threshold: int,
        window_s: float,
        cooldown_s: float,
        clock: Callable[[], int],
        geo_block_s: float = 3600.0,
    ) -> None:
        self._threshold = threshold
        self._window_ms = round(window_s * 1000)
        self._cooldown_ms = round(cooldown_s * 1000)
        self._geo_block_ms = round(geo_block_s * 1000)
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def admit(self, exchange_id: str) -> Attempt:
        """Leave for one call to ``exchange_id``, or :class:`errors.CircuitOpen` at once.

        Costs no upstream call. While open, every caller is refused with ``Retry-After`` set to
        the cool-down left; once it has passed, exactly one caller at a time is let through
        (the probe) and the others are refused until the probe's outcome is known.
        """
        circuit = self._circuits.setdefault(exchange_id, _Circuit())
        if circuit.open_until is None:
            return Attempt(self, exchange_id, probe=False)
        now = self._clock()
        if now < circuit.open_until:
            raise self._refusal(exchange_id, circuit, (circuit.open_until - now) / 1000)
        if circuit.probing:
            raise self._refusal(exchange_id, circuit, PROBE_RETRY_AFTER_S)
        circuit.probing = True
        count("CircuitProbes", exchange=exchange_id)
        return Attempt(self, exchange_id, probe=True)

    def reset(self) -> None:
        """Close every circuit: what tripped them is history (a SnapStart restore)."""
        self._circuits.clear()

    def state(self, exchange_id: str) -> str:
        """``closed``, ``open`` or ``half-open``, as of now (for health reports and tests)."""
        circuit = self._circuits.get(exchange_id)
        if circuit is None or circuit.open_until is None:
            return "closed"
        return "open" if self._clock() < circuit.open_until else "half-open"

    # -- outcomes (through Attempt) --------------------------------------------------------

    def _succeeded(self, attempt: Attempt) -> None:
        circuit = self._circuits[attempt.exchange_id]
        if attempt.probe:
            circuit.probing = False
            circuit.open_until = None
            logger.info("circuit closed", extra={"exchange": attempt.exchange_id})
            count("CircuitClosed", exchange=attempt.exchange_id)
        if circuit.open_until is None:
            # A call admitted before the circuit opened proves nothing about it now.
            circuit.failures.clear()

    def _failed(
        self, attempt: Attempt, error: errors.ProxyError, retry_after: float | None
    ) -> float | None:
        circuit = self._circuits[attempt.exchange_id]
        now = self._clock()
        lasting = isinstance(error, errors.UpstreamGeoBlocked)
        banned = lasting or isinstance(error, errors.UpstreamBanned)
        if attempt.probe:
            circuit.probing = False
        elif not banned:
            if circuit.open_until is not None:
                return None  # a call let through before the circuit opened adds nothing now
            circuit.failures.append(now)
            while circuit.failures and circuit.failures[0] <= now - self._window_ms:
                circuit.failures.popleft()
            if len(circuit.failures) < self._threshold:
                return None
        asked_ms = round(retry_after * 1000) if retry_after else 0
        # A ban lasts what the exchange says; other pauses last at least the cool-down.
        span = (asked_ms or self._cooldown_ms) if banned else max(asked_ms, self._cooldown_ms)
        if lasting:
            span = self._geo_block_ms
        until = now + span
        if circuit.open_until is not None and circuit.open_until > until:
            return None
        circuit.open_until = until
        circuit.reason = error.code
        circuit.failures.clear()
        logger.warning(
            "circuit opened",
            extra={
                "exchange": attempt.exchange_id,
                "reason": error.code,
                "cooldown_s": span / 1000,
                "probe_failed": attempt.probe,
            },
        )
        count("CircuitOpened", exchange=attempt.exchange_id)
        return span / 1000

    def _released(self, attempt: Attempt) -> None:
        if attempt.probe:
            self._circuits[attempt.exchange_id].probing = False

    @staticmethod
    def _refusal(exchange_id: str, circuit: _Circuit, wait_s: float) -> errors.ProxyError:
        count("CircuitRejected", exchange=exchange_id)
        if circuit.reason == errors.UpstreamGeoBlocked.code:  # what lasts is said as it is
            return errors.UpstreamGeoBlocked(
                f"{exchange_id} refuses to serve the location this service runs in"
            )
        return errors.CircuitOpen(
            f"calls to {exchange_id} are paused after {circuit.reason}; "
            f"the next try is in {max(1, math.ceil(wait_s))} s",
            retry_after=wait_s,
            extra={"reason": circuit.reason},
        )
