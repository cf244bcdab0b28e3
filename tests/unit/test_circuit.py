"""The circuit breaker's promises, on an injected clock."""

from __future__ import annotations

import pytest

from market_proxy import errors
from market_proxy.circuit import PROBE_RETRY_AFTER_S, CircuitBreaker

EXCHANGE = "binance"
DOWN = errors.UpstreamUnavailable("binance is unavailable or unreachable", retry_after=5.0)
BAN = errors.UpstreamBanned("binance has banned this service's address", retry_after=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, window_s=30, cooldown_s=10, clock=clock)


def fail(
    breaker: CircuitBreaker, error: errors.ProxyError, retry_after: float | None = None
) -> None:
    breaker.admit(EXCHANGE).failed(error, retry_after=retry_after)


def cooled_down(breaker: CircuitBreaker, clock: Clock) -> None:
    """Open the circuit with its threshold of failures, then let its cool-down pass."""
    for _ in range(3):
        fail(breaker, DOWN)
    clock.advance(10)


def refusal(breaker: CircuitBreaker) -> errors.CircuitOpen:
    with pytest.raises(errors.CircuitOpen) as refused:
        breaker.admit(EXCHANGE)
    return refused.value


def test_failures_below_the_threshold_leave_the_circuit_closed(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        fail(breaker, DOWN)
    assert breaker.state(EXCHANGE) == "closed"
    assert breaker.admit(EXCHANGE).probe is False


def test_threshold_failures_in_a_row_open_it_with_the_cooldown_as_retry_after(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        fail(breaker, DOWN)
    clock.advance(4)
    refused = refusal(breaker)
    assert breaker.state(EXCHANGE) == "open"
    assert refused.retry_after == pytest.approx(6.0)
    assert refused.retry_after_header == "6"
    assert refused.status == 503
    assert refused.extra == {"reason": "upstream_unavailable"}


def test_a_success_in_between_starts_the_count_again(breaker: CircuitBreaker) -> None:
    fail(breaker, DOWN)
    fail(breaker, DOWN)
    breaker.admit(EXCHANGE).succeeded()
    fail(breaker, DOWN)
    fail(breaker, DOWN)
    assert breaker.state(EXCHANGE) == "closed"


def test_failures_spread_wider_than_the_window_do_not_open_it(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(5):
        fail(breaker, DOWN)
        clock.advance(16)
    assert breaker.state(EXCHANGE) == "closed"


def test_answers_the_exchange_meant_to_give_count_as_success(breaker: CircuitBreaker) -> None:
    fail(breaker, DOWN)
    fail(breaker, DOWN)
    fail(breaker, errors.UnknownMarket("binance has no such market"))
    fail(breaker, DOWN)
    assert breaker.state(EXCHANGE) == "closed"


def test_a_ban_opens_it_at_once_for_the_bans_retry_after(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, BAN, retry_after=120)
    clock.advance(119)
    assert refusal(breaker).retry_after == pytest.approx(1.0)
    assert refusal(breaker).extra == {"reason": "upstream_banned"}
    clock.advance(1)
    assert breaker.admit(EXCHANGE).probe is True


def test_a_ban_without_retry_after_lasts_the_configured_cooldown(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, BAN)
    clock.advance(9.999)
    refusal(breaker)
    clock.advance(0.001)
    assert breaker.admit(EXCHANGE).probe is True


def test_a_longer_retry_after_than_the_cooldown_is_honoured(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        fail(breaker, errors.UpstreamRateLimited("binance is rate limiting"), retry_after=45)
    clock.advance(44)
    assert refusal(breaker).retry_after == pytest.approx(1.0)


def test_after_the_cooldown_one_probe_passes_and_the_others_wait_for_it(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    cooled_down(breaker, clock)
    probe = breaker.admit(EXCHANGE)
    assert probe.probe is True
    assert breaker.state(EXCHANGE) == "half-open"
    assert refusal(breaker).retry_after == PROBE_RETRY_AFTER_S


def test_a_successful_probe_closes_it(breaker: CircuitBreaker, clock: Clock) -> None:
    cooled_down(breaker, clock)
    breaker.admit(EXCHANGE).succeeded()
    assert breaker.state(EXCHANGE) == "closed"
    assert breaker.admit(EXCHANGE).probe is False
    fail(breaker, DOWN)
    fail(breaker, DOWN)
    assert breaker.state(EXCHANGE) == "closed", "the count starts again from nothing"


def test_a_failed_probe_opens_it_for_another_cooldown(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    cooled_down(breaker, clock)
    breaker.admit(EXCHANGE).failed(DOWN)
    assert refusal(breaker).retry_after == pytest.approx(10.0)


def test_a_probe_that_ends_without_a_verdict_lets_the_next_caller_probe(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    cooled_down(breaker, clock)
    breaker.admit(EXCHANGE).release()  # e.g. the caller was cancelled
    assert breaker.admit(EXCHANGE).probe is True


def test_an_outcome_is_taken_once(breaker: CircuitBreaker, clock: Clock) -> None:
    cooled_down(breaker, clock)
    probe = breaker.admit(EXCHANGE)
    probe.succeeded()
    probe.failed(DOWN)
    probe.release()
    assert breaker.state(EXCHANGE) == "closed"


def test_a_late_failure_of_a_call_let_through_before_opening_does_not_extend_it(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    early = breaker.admit(EXCHANGE)
    for _ in range(3):
        fail(breaker, DOWN)
    clock.advance(9)
    early.failed(DOWN)
    clock.advance(1)
    assert breaker.admit(EXCHANGE).probe is True


def test_a_ban_during_an_open_circuit_extends_it(breaker: CircuitBreaker, clock: Clock) -> None:
    early = breaker.admit(EXCHANGE)
    for _ in range(3):
        fail(breaker, DOWN)
    early.failed(BAN, retry_after=300)
    clock.advance(299)
    assert refusal(breaker).extra == {"reason": "upstream_banned"}


def test_each_exchange_has_its_own_circuit(breaker: CircuitBreaker) -> None:
    fail(breaker, BAN)
    assert breaker.state(EXCHANGE) == "open"
    assert breaker.admit("kraken").probe is False
    assert breaker.state("kraken") == "closed"


def test_the_failure_that_opens_it_learns_how_long_calls_are_paused(
    breaker: CircuitBreaker,
) -> None:
    first, second = breaker.admit(EXCHANGE), breaker.admit(EXCHANGE)
    assert first.failed(DOWN) is None
    assert second.failed(DOWN) is None
    assert breaker.admit(EXCHANGE).failed(DOWN) == pytest.approx(10.0)
