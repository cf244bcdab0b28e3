"""Conditional requests through ApiFunction's real handler, fed API Gateway (REST) events:
a client that already holds an answer's payload (its ETag in If-None-Match) gets a 304 with
the freshness headers and no body; any other client gets the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.lambda_api import LambdaApi, Reply, lambda_api_on_new_table

pytestmark = pytest.mark.e2e

TICKER = "/ticker/binance/BTC/USDT"
HISTORY = "/historical/binance/BTC/USDT"
HISTORY_QUERY = {"timeframe": "1h", "limit": "5"}
# What every answer says about its freshness, on a 304 as on a 200.
FRESHNESS_HEADERS = ("age", "cache-control", "last-modified", "x-cache", "x-data-age-ms")
ANOTHER_ETAG = '"00000000000000000000"'


class ServiceClock:
    """The container's "now", moved only by the test; the exchange's stays where it was put,
    so a refetched ticker is the very same payload unless the test changes it."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[LambdaApi]:
    with lambda_api_on_new_table(dynamodb_local.endpoint, exchange_sim_session) as api:
        yield api


@pytest.fixture
def clock(sim: ExchangeSim) -> ServiceClock:
    clock = ServiceClock(now_ms())
    sim.set_clock(clock.now)  # the exchange's tickers and candles are stamped with this
    return clock


@pytest.fixture
def container(api: LambdaApi, settings: Settings, clock: ServiceClock) -> Iterator[MarketData]:
    """A new container behind the handler, on a table of this test's own."""
    yield api.container(settings, clock, own_store=True)
    api.close_containers()


def if_none_match(value: str) -> dict[str, str]:
    return {"If-None-Match": value}


def assert_not_modified(reply: Reply, etag: str) -> None:
    assert reply.status == 304
    assert reply.text == ""
    assert reply.headers["etag"] == etag
    for name in FRESHNESS_HEADERS:
        assert name in reply.headers, f"a 304 carries {name}"


# What a client may send that names the payload it holds: RFC 9110 compares weakly.
HOLDING: list[tuple[str, Callable[[str], str]]] = [
    ("exact", lambda etag: etag),
    ("weak", lambda etag: f"W/{etag}"),
    ("in a list", lambda etag: f'{ANOTHER_ETAG}, {etag}, "ffff"'),
    ("weak in a list", lambda etag: f"W/{ANOTHER_ETAG},W/{etag}"),
    ("any", lambda etag: "*"),
]
# And what does not name it.
NOT_HOLDING: list[tuple[str, Callable[[str], str]]] = [
    ("another", lambda etag: ANOTHER_ETAG),
    ("a list of others", lambda etag: f'{ANOTHER_ETAG}, W/"ffff"'),
    ("unquoted", lambda etag: etag.strip('"')),
    ("a prefix", lambda etag: etag[:-3] + '"'),
]


def test_the_exact_etag_gives_a_304_with_the_etag_and_freshness_headers_and_no_body(
    api: LambdaApi, container: MarketData, sim: ExchangeSim
) -> None:
    # Given a client holding a ticker answer,
    first = api.get(TICKER)
    etag = first.headers["etag"]
    sim.reset_calls()
    # when it asks again with that answer's ETag,
    again = api.get(TICKER, headers=if_none_match(etag))
    # then it is told it holds the current payload, with the freshness of what it holds,
    assert first.status == 200
    assert first.json()["symbol"] == "BTC/USDT"
    assert_not_modified(again, etag)
    assert again.headers["x-cache"] == "l1"
    assert again.headers["x-fetched-at"] == first.headers["x-fetched-at"]
    assert again.headers["last-modified"] == first.headers["last-modified"]
    # and no call reached the exchange.
    assert sim.calls("binance", "ticker") == 0


@pytest.mark.parametrize("sent", [form for _, form in HOLDING], ids=[i for i, _ in HOLDING])
def test_a_ticker_is_not_sent_again_to_a_client_that_names_it_in_if_none_match(
    api: LambdaApi, container: MarketData, sent: Callable[[str], str]
) -> None:
    # Given a client holding a ticker answer,
    etag = api.get(TICKER).headers["etag"]
    # when its If-None-Match names that ETag (weakly, among others, or as "*"),
    again = api.get(TICKER, headers=if_none_match(sent(etag)))
    # then the answer is a 304.
    assert_not_modified(again, etag)


@pytest.mark.parametrize("sent", [form for _, form in NOT_HOLDING], ids=[i for i, _ in NOT_HOLDING])
def test_a_ticker_is_sent_in_full_when_if_none_match_does_not_name_it(
    api: LambdaApi, container: MarketData, sent: Callable[[str], str]
) -> None:
    # Given a ticker answer with its ETag,
    first = api.get(TICKER)
    etag = first.headers["etag"]
    # when a client asks with an If-None-Match that does not name that ETag,
    again = api.get(TICKER, headers=if_none_match(sent(etag)))
    # then it gets the whole answer, with the ETag it should hold from now on.
    assert again.status == 200
    assert again.headers["etag"] == etag
    assert again.json()["last"] == first.json()["last"]
    assert "cache-control" in again.headers


def test_history_answers_give_a_304_for_their_etag_and_the_candles_otherwise(
    api: LambdaApi, container: MarketData, sim: ExchangeSim
) -> None:
    # Given a client holding an answer of candles,
    first = api.get(HISTORY, query=HISTORY_QUERY)
    etag = first.headers["etag"]
    sim.reset_calls()
    # when it asks again with that ETag, weakly, as "*", and with another ETag,
    exact = api.get(HISTORY, query=HISTORY_QUERY, headers=if_none_match(etag))
    weak = api.get(HISTORY, query=HISTORY_QUERY, headers=if_none_match(f"W/{etag}"))
    anything = api.get(HISTORY, query=HISTORY_QUERY, headers=if_none_match("*"))
    other = api.get(HISTORY, query=HISTORY_QUERY, headers=if_none_match(ANOTHER_ETAG))
    # then the first three are 304s with the freshness headers, the last the candles again,
    assert first.status == 200
    assert first.json()["returned"]["candles"] == 5
    for reply in (exact, weak, anything):
        assert_not_modified(reply, etag)
    assert other.status == 200
    assert other.headers["etag"] == etag
    assert other.json()["candles"] == first.json()["candles"]
    # all of them from the cache.
    assert sim.calls("binance", "ohlcv") == 0


def test_the_etag_of_another_history_range_does_not_match(
    api: LambdaApi, container: MarketData
) -> None:
    # Given a client holding the last five hourly candles,
    five = api.get(HISTORY, query=HISTORY_QUERY)
    # when it asks for the last six with that answer's ETag,
    held = if_none_match(five.headers["etag"])
    six = api.get(HISTORY, query={**HISTORY_QUERY, "limit": "6"}, headers=held)
    # then it gets an answer of its own, under an ETag of its own.
    assert six.status == 200
    assert six.json()["requested"]["candles"] == 6
    assert six.headers["etag"] != five.headers["etag"]


def test_a_longer_history_asked_after_a_shorter_one_still_ends_with_the_open_candle(
    api: LambdaApi, container: MarketData
) -> None:
    # (At 73926c8 the six came back without the open candle, and without a gap for it.)
    # Given the last five hourly candles served, the open one last,
    five = api.get(HISTORY, query=HISTORY_QUERY).json()
    # when the last six are asked for (one more, older, closed candle to fetch),
    six = api.get(HISTORY, query={**HISTORY_QUERY, "limit": "6"}).json()
    # then they are the six, ending with the same open candle.
    assert five["returned"]["open_candle"] is True
    assert [row[0] for row in six["candles"][1:]] == [row[0] for row in five["candles"]]
    assert (six["returned"]["candles"], six["returned"]["open_candle"]) == (6, True)


def test_the_etag_changes_when_the_ticker_changes_and_the_old_one_then_gets_the_new_ticker(
    api: LambdaApi,
    container: MarketData,
    sim: ExchangeSim,
    clock: ServiceClock,
    settings: Settings,
) -> None:
    # Given a client holding a ticker answer,
    sim.set_ticker("binance", "BTCUSDT", last=61_000.0)
    first = api.get(TICKER)
    held = first.headers["etag"]
    # when the price moves and the ticker is refreshed once its freshness has passed,
    sim.set_ticker("binance", "BTCUSDT", last=61_500.0)
    clock.advance(settings.ticker_ttl_seconds + 0.5)
    changed = api.get(TICKER, headers=if_none_match(held))
    # then the client's ETag no longer matches: it gets the new ticker under a new ETag,
    assert first.json()["last"] == 61_000.0
    assert changed.status == 200
    assert changed.headers["x-cache"] == "upstream"
    assert changed.json()["last"] == 61_500.0
    assert changed.headers["etag"] != held
    # which is the one that matches from then on.
    again = api.get(TICKER, headers=if_none_match(changed.headers["etag"]))
    assert_not_modified(again, changed.headers["etag"])


def test_a_refetched_but_unchanged_ticker_keeps_its_etag_so_the_client_still_gets_a_304(
    api: LambdaApi,
    container: MarketData,
    sim: ExchangeSim,
    clock: ServiceClock,
    settings: Settings,
) -> None:
    # Given a client holding a ticker answer,
    held = api.get(TICKER).headers["etag"]
    # when the ticker is fetched again after its freshness, the exchange's unchanged,
    clock.advance(settings.ticker_ttl_seconds + 0.5)
    sim.reset_calls()
    again = api.get(TICKER, headers=if_none_match(held))
    # then the payload is the same, so is its ETag: the client is not sent it again.
    assert sim.calls("binance", "ticker") == 1
    assert again.headers["x-cache"] == "upstream"
    assert_not_modified(again, held)


def test_candles_as_csv_and_as_json_each_give_a_304_only_for_their_own_etag(
    api: LambdaApi, container: MarketData
) -> None:
    # Given a client holding the candles as JSON and another holding them as CSV,
    as_json = api.get(HISTORY, query=HISTORY_QUERY, headers={"Accept": "application/json"})
    as_csv = api.get(HISTORY, query=HISTORY_QUERY, headers={"Accept": "text/csv"})
    json_etag, csv_etag = as_json.headers["etag"], as_csv.headers["etag"]
    # then the two representations of one URL say so and are told apart,
    assert json_etag != csv_etag
    assert as_json.headers["vary"] == as_csv.headers["vary"] == "Accept"
    # and each gets a 304 for its own ETag only, saying what it varies on.
    csv_again = api.get(
        HISTORY, query=HISTORY_QUERY, headers={"Accept": "text/csv", **if_none_match(csv_etag)}
    )
    assert_not_modified(csv_again, csv_etag)
    assert csv_again.headers["vary"] == "Accept"
    crossed = api.get(
        HISTORY,
        query=HISTORY_QUERY,
        headers={"Accept": "application/json;q=1, text/csv;q=0.1", **if_none_match(csv_etag)},
    )
    assert crossed.status == 200
    assert crossed.headers["etag"] == json_etag
