"""Every exchange fault, with a cold cache and with a stale one, through ApiFunction's handler.

Given a container whose exchange fails in one of the ways exchanges really fail (the loopback
exchange answers in each of its five exchanges' own wire formats), when a client asks for a
ticker: with nothing cached, the answer is the problem+json named for that failure (the
README's table of hostile conditions);
with a ticker past its freshness but inside the stale-if-error window, it is that ticker,
marked stale with the failure's code. Never a 500.

Each case is a new container on a shared table and asks for a market of its own, so no case
sees another's cached ticker, remembered error or open circuit. Each case also checks that
the exchange was really asked (the loopback exchange's count, and the function's own
``UpstreamErrors`` metric), so that no case passes on a remembered answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.clock import now_ms
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.emf import metric_total
from tests.support.lambda_api import LambdaApi, Reply, lambda_api_on_new_table
from tests.support.output import captured
from tests.support.stack import EXCHANGES

pytestmark = pytest.mark.integration

TIMEOUT_MS = 500  # the exchange timeout of the containers under test: keeps timeouts quick
RETRY_AFTER = 7  # what the exchange's 429 and 418 ask for
HUGE_BYTES = 4 * 1024 * 1024  # a "huge" ticker: past the 1 MiB cap of a ticker


@dataclass(frozen=True)
class Expected:
    """The answer to one fault when nothing stale may be served."""

    status: int
    code: str
    retry_after: str | None  # the Retry-After header, None when there must be none
    exchange_calls: int = 1  # ticker requests the loopback exchange receives
    kind: str | None = None  # the loopback exchange's fault, when not the case's own name
    sent_retry_after: int | str = RETRY_AFTER  # the Retry-After the exchange sends
    retryable: bool = True


EXPECTED: dict[str, Expected] = {
    "timeout": Expected(504, "upstream_timeout", None),
    # aiohttp sends an idempotent GET a second time when the connection drops unanswered.
    "reset": Expected(503, "upstream_unavailable", "5", exchange_calls=2),
    # Nothing listens where the exchange is said to be: no request ever arrives.
    "refused": Expected(503, "upstream_unavailable", "5", exchange_calls=0),
    "429": Expected(429, "upstream_rate_limited", str(RETRY_AFTER)),
    "418": Expected(503, "upstream_banned", str(RETRY_AFTER)),
    "500": Expected(503, "upstream_unavailable", "5"),
    "502": Expected(503, "upstream_unavailable", "5"),
    "503": Expected(503, "upstream_unavailable", "5"),
    "html_maintenance": Expected(503, "upstream_unavailable", "5"),
    "malformed_json": Expected(502, "upstream_bad_response", None),
    "html_200": Expected(502, "upstream_bad_response", None),
    "truncated": Expected(502, "upstream_bad_response", None),
    # A Retry-After that is not delta-seconds or an HTTP-date is the failure's default.
    "429-retry-after-inf": Expected(
        429, "upstream_rate_limited", "1", kind="429", sent_retry_after="inf"
    ),
    "429-retry-after-1e300": Expected(
        429, "upstream_rate_limited", "1", kind="429", sent_retry_after="1e300"
    ),
    # A ban with no usable Retry-After: the circuit opens for its cooldown (30 s).
    "418-retry-after-inf": Expected(
        503, "upstream_banned", "30", kind="418", sent_retry_after="inf"
    ),
    # Numbers no price can be, and an answer past the size a ticker can have.
    "nonfinite": Expected(502, "upstream_bad_response", None),
    "negative": Expected(502, "upstream_bad_response", None),
    "huge": Expected(502, "upstream_bad_response", None),
    # The exchange's "no such market" for a market it lists (Kraken's unmapped by ccxt).
    "unknown_market": Expected(404, "unknown_market", None, retryable=False),
}
CACHES = ("cold", "stale")
CASES = [
    pytest.param(exchange, fault, cache, id=f"{exchange}-{fault}-{cache}")
    for exchange in EXCHANGES
    for fault in EXPECTED
    for cache in CACHES
]


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[LambdaApi]:
    with lambda_api_on_new_table(dynamodb_local.endpoint, exchange_sim_session) as api:
        yield api


def market_of_case(sim: ExchangeSim, exchange: str, fault: str, cache: str) -> str:
    """The exchange's own id of the spot market this case alone asks for."""
    spot = [market.id for market in sim.book.of_kind(exchange, "spot")]
    return spot[list(EXPECTED).index(fault) * len(CACHES) + CACHES.index(cache)]


def failing(settings: Settings, sim: ExchangeSim, exchange: str, fault: str) -> Settings:
    options = dict(settings.exchange_options)
    if fault == "refused":
        options[exchange] = {**options[exchange], **sim.ccxt_options_down(exchange)}
    else:
        expected = EXPECTED[fault]
        sim.inject(
            exchange,
            expected.kind or fault,
            endpoint="ticker",
            times=2,
            retry_after=expected.sent_retry_after,
            delay_s=3,
            size_bytes=HUGE_BYTES,
        )
    return settings.model_copy(
        update={"upstream_timeout_ms": TIMEOUT_MS, "exchange_options": options}
    )


@pytest.mark.parametrize(("exchange", "fault", "cache"), CASES)
def test_an_exchange_fault_gets_the_answer_design_names(
    api: LambdaApi,
    sim: ExchangeSim,
    exchange: str,
    fault: str,
    cache: str,
) -> None:
    expected = EXPECTED[fault]
    settings: Settings = api.module.service.settings
    clock = SharedClock(now_ms(), sim)
    api.lift_pauses()
    path = f"/ticker/{exchange}/{market_of_case(sim, exchange, fault, cache)}"
    seeded: Reply | None = None
    if cache == "stale":
        # Given a ticker an earlier container fetched, now past freshness and
        # stale-while-revalidate, but within stale-if-error,
        api.container(settings, clock)
        seeded = api.get(path)
        assert seeded.status == 200
        clock.advance(settings.ticker_ttl_seconds + settings.ticker_swr_seconds + 1)
    # and a new container whose exchange fails in this way,
    api.container(failing(settings, sim, exchange, fault), clock)
    sim.reset_calls()

    # when a client asks for the ticker,
    with captured() as printed:
        reply = api.get(path)

    # then the exchange was really asked, and failed,
    assert sim.calls(exchange, "ticker") == expected.exchange_calls
    assert metric_total(printed.getvalue(), "UpstreamErrors", exchange=exchange) == 1
    # and the client gets what the README names for it.
    if seeded is None or not expected.retryable:  # the exchange says: no such market
        assert_problem(reply, expected)
    else:
        assert_stale(reply, seeded, expected.code)


def assert_problem(reply: Reply, expected: Expected) -> None:
    problem = reply.json()
    assert reply.status == expected.status
    assert reply.headers["content-type"] == "application/problem+json"
    assert problem["status"] == expected.status
    assert problem["code"] == expected.code
    assert problem["retryable"] is expected.retryable
    assert reply.headers.get("retry-after") == expected.retry_after
    assert problem.get("retry_after") == (
        int(expected.retry_after) if expected.retry_after else None
    )


def assert_stale(reply: Reply, seeded: Reply, reason: str) -> None:
    body = reply.json()
    assert reply.status == 200
    assert body["freshness"]["source"] == "stale"
    assert body["freshness"]["stale"] is True
    assert body["freshness"]["stale_reason"] == reason
    assert reply.headers["x-cache"] == "stale"
    assert reply.headers["x-stale-reason"] == reason
    assert reply.headers["cache-control"] == "no-cache"
    assert body["last"] == seeded.json()["last"]
    assert body["freshness"]["fetched_at"] == seeded.json()["freshness"]["fetched_at"]


@pytest.mark.parametrize("fault", ["malformed_json", "html_200"])
@pytest.mark.parametrize("exchange", EXCHANGES)
def test_an_unreadable_page_of_candles_is_a_502_never_an_empty_history(
    api: LambdaApi, sim: ExchangeSim, exchange: str, fault: str
) -> None:
    settings: Settings = api.module.service.settings
    clock = SharedClock(now_ms(), sim)
    api.lift_pauses()
    # (A market of its own per fault: the table is shared by the module's tests.)
    symbol = {"malformed_json": "BTC-USDT", "html_200": "ETH-USDT"}[fault]
    path, query = f"/historical/{exchange}/{symbol}", {"timeframe": "1h", "limit": "5"}
    # Given an exchange whose page of candles is not valid JSON, or a page of HTML sent as
    # a 200 (ccxt alone reads either as no candles at all),
    api.container(settings, clock)
    sim.inject(exchange, fault, endpoint="ohlcv")
    # when a client asks for history, then it is told the answer was unreadable;
    broken = api.get(path, query=query)
    assert (broken.status, broken.json()["code"]) == (502, "upstream_bad_response")
    # and once the exchange answers properly, the history is whole: nothing was cached as
    # a gap.
    clock.advance(2)
    api.container(settings, clock)
    whole = api.get(path, query=query)
    assert whole.status == 200
    assert whole.json()["returned"]["candles"] == 5
    assert whole.json()["gaps"] == []
    assert sim.calls(exchange, "ohlcv") >= 2
