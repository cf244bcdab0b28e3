"""The app over real HTTP under uvicorn, as `make run` and the stream function serve it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.api.app import create_app
from market_proxy.api.problems import PROBLEM_JSON
from market_proxy.api.schemas import Problem
from market_proxy.models import Candles, Ticker
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from market_proxy.streams import MAX_EVENT_ID_LENGTH, MAX_SYMBOLS
from market_proxy.symbols import MAX_SYMBOL_LENGTH, SYMBOL_PATTERN
from tests.support.http import serve
from tests.support.stack import EXCHANGES

pytestmark = pytest.mark.e2e


MAX_CANDLES = 500  # small, so that the largest allowed answer is quick to fetch


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    bounded = settings.model_copy(update={"ohlcv_max_candles": MAX_CANDLES})
    with (
        serve(create_app(MarketData.from_settings(bounded))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def test_a_ticker_over_http_matches_its_documented_schema(
    client: httpx.Client, sim: ExchangeSim
) -> None:
    sim.set_ticker("binance", "BTCUSDT", last=42000.0, bid=41999.5, ask=42000.5)
    response = client.get("/ticker/binance/BTC/USDT")
    assert response.status_code == 200
    ticker = Ticker.model_validate(response.json())
    assert ticker.last == 42000.0
    assert response.headers["x-cache"] == "upstream"
    assert int(response.headers["age"]) >= 0


def test_a_repeat_is_served_from_memory_and_a_matching_etag_gives_304(
    client: httpx.Client, sim: ExchangeSim
) -> None:
    first = client.get("/ticker/kraken/BTC-USD")
    sim.reset_calls()
    second = client.get("/ticker/kraken/BTC-USD")
    assert second.headers["x-cache"] == "l1"
    assert second.headers["etag"] == first.headers["etag"]
    not_modified = client.get(
        "/ticker/kraken/BTC-USD", headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert sim.calls("kraken") == 0


def test_history_over_http_matches_its_documented_schema(client: httpx.Client) -> None:
    response = client.get("/historical/binance/ETH_USDT", params={"timeframe": "5m", "limit": 12})
    assert response.status_code == 200
    candles = Candles.model_validate(response.json())
    assert candles.returned.candles == 12
    assert candles.columns == ["timestamp", "open", "high", "low", "close", "volume"]


def test_an_error_over_http_is_problem_json(client: httpx.Client) -> None:
    response = client.get("/historical/binance/BTC-USDT", params={"timeframe": "2s"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = Problem.model_validate(response.json())
    assert problem.code == "invalid_parameter"
    assert "1m" in response.json()["valid"]


def test_openapi_and_docs_are_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/ticker/{exchange}/{symbol}",
        "/historical/{exchange}/{symbol}",
        "/exchanges",
        "/health",
    } <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_a_callers_request_id_is_echoed_when_no_gateway_gave_one(client: httpx.Client) -> None:
    response = client.get("/health", headers={"X-Request-Id": "trace-me-42"})
    assert response.headers["x-request-id"] == "trace-me-42"


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["status"] == response.status_code
    return body


@pytest.mark.parametrize(
    ("path", "params", "parameter", "valid"),
    [
        ("/ticker/binance/" + "A" * 65, {}, "symbol", "e.g. BTC/USDT"),
        ("/ticker/binance/BTC USDT", {}, "symbol", "e.g. BTC/USDT"),
        ("/ticker/binance/BTC%2BUSDT", {}, "symbol", "e.g. BTC/USDT"),
        ("/historical/binance/BTC-USDT", {"limit": MAX_CANDLES + 1}, "limit", "1..500"),
        ("/historical/binance/BTC-USDT", {"timeframe": "7m"}, "timeframe", "1m"),
        ("/historical/binance/BTC-USDT", {"since": "yesterday"}, "since", "2024-01-01T00:00:00Z"),
        ("/historical/binance/BTC-USDT", {"since": "²"}, "since", "2024-01-01T00:00:00Z"),
        ("/historical/binance/BTC-USDT", {"until": "10000000000000"}, "until", "1704067200000"),
        (
            "/historical/binance/BTC-USDT",
            {"since": "1704067200000", "until": "1704067200000"},
            "until",
            None,
        ),
        ("/historical/binance/BTC-USDT", {"since": "9999999999999"}, "since", None),
        (
            "/historical/binance/BTC-USDT",
            {"timeframe": "1m", "since": "0", "until": "1704067200000"},
            "until",
            "at most 500 candles",
        ),
    ],
)
def test_a_value_out_of_bounds_is_a_400_naming_the_parameter_and_what_is_valid(
    client: httpx.Client, path: str, params: dict[str, Any], parameter: str, valid: str | None
) -> None:
    response = client.get(path, params=params)
    body = problem(response)
    assert response.status_code == 400
    assert body["code"] == "invalid_parameter"
    assert body["parameter"] == parameter
    if valid is not None:
        assert valid in body["valid"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/ticker/" + "b" * 33 + "/BTC-USDT", {}, "exchange"),
        ("/ticker/bin.ance/BTC-USDT", {}, "exchange"),
        ("/historical/binance/BTC-USDT", {"limit": 0}, "limit"),
        ("/historical/binance/BTC-USDT", {"limit": "ten"}, "limit"),
        ("/historical/binance/BTC-USDT", {"since": "1" * 41}, "since"),
        ("/historical/binance/BTC-USDT", {"timeframe": "123456789"}, "timeframe"),
        ("/health", {"deep": "maybe"}, "deep"),
    ],
)
def test_a_malformed_parameter_is_a_422_listing_each_error(
    client: httpx.Client, path: str, params: dict[str, Any], field: str
) -> None:
    response = client.get(path, params=params)
    body = problem(response)
    assert response.status_code == 422
    assert body["code"] == "invalid_request"
    assert field in [error["parameter"] for error in body["errors"]]


def test_a_well_formed_unknown_exchange_is_a_404_listing_the_served_ones(
    client: httpx.Client,
) -> None:
    response = client.get("/ticker/nowhere/BTC-USDT")
    assert response.status_code == 404
    assert problem(response)["valid"] == list(EXCHANGES)


def test_the_largest_allowed_limit_and_the_longest_symbol_text_are_served(
    client: httpx.Client,
) -> None:
    largest = client.get("/historical/kraken/BTC-USD", params={"limit": MAX_CANDLES})
    assert largest.status_code == 200
    assert Candles.model_validate(largest.json()).requested.candles == MAX_CANDLES
    longest = client.get("/ticker/binance/" + "A" * 64)
    assert problem(longest)["code"] == "unknown_market"


def test_a_batch_as_large_as_tickers_max_symbols_allows_is_served_whatever_its_spelling(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given a deployment that allows four times the default batch,
    wide = settings.model_copy(update={"tickers_max_symbols": 200})
    listed = [f"{m.base}/{m.quote}" for m in sim.book.of_kind("binance", "spot")]
    unlisted = [f"NOPE{n}/USDT" for n in range(120 - len(listed))]
    # when 120 symbols come spaced out, longer than the default's 50 symbols could be,
    query = ",".join(f"{symbol:^40}" for symbol in [*listed, *unlisted])
    assert len(query) > 50 * (MAX_SYMBOL_LENGTH + 3)
    with (
        serve(create_app(MarketData.from_settings(wide))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        sim.reset_calls()
        response = http.get("/tickers/binance", params={"symbols": query})
    # then each is answered or reported, in one upstream call for the listed ones.
    assert response.status_code == 200, response.text
    answer = response.json()
    assert sorted(answer["tickers"]) == sorted(listed)
    assert sorted(answer["errors"]) == sorted(unlisted)
    assert sim.calls("binance", "tickers") == 1


def test_the_openapi_document_states_the_bounds_the_service_enforces(
    client: httpx.Client, settings: Settings
) -> None:
    spec = client.get("/openapi.json").json()

    def parameter(path: str, name: str) -> dict[str, Any]:
        (found,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = found["schema"]
        branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
        return {**schema, **(branches[0] if branches else {})}  # an optional one's value

    history = "/historical/{exchange}/{symbol}"
    exchange = parameter(history, "exchange")
    assert exchange["enum"] == list(EXCHANGES)
    assert exchange["maxLength"] == 32
    assert exchange["pattern"] == "^[A-Za-z][A-Za-z0-9_]*$"
    symbol = parameter(history, "symbol")
    assert symbol["maxLength"] == MAX_SYMBOL_LENGTH
    assert symbol["pattern"] == SYMBOL_PATTERN
    assert parameter(history, "limit")["minimum"] == 1
    assert parameter(history, "limit")["maximum"] == MAX_CANDLES
    assert "1m" in parameter(history, "timeframe")["enum"]
    assert parameter(history, "since")["pattern"] == parameter(history, "until")["pattern"]
    assert "[0-9]{1,13}" in parameter(history, "since")["pattern"]
    interval = parameter("/sse/tickers/{exchange}", "interval")
    assert interval["minimum"] == settings.stream_min_interval_seconds
    assert interval["maximum"] == settings.stream_max_interval_seconds
    assert f"{{0,{MAX_SYMBOLS - 1}}}" in parameter("/sse/tickers/{exchange}", "symbols")["pattern"]
    last_event_id = parameter("/sse/tickers/{exchange}", "Last-Event-ID")
    assert last_event_id["maxLength"] == MAX_EVENT_ID_LENGTH
    for path in (history, "/ticker/{exchange}/{symbol}", "/health"):
        error = spec["paths"][path]["get"]["responses"]["422"]["content"]
        assert error == {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.mark.parametrize("most", [7, 200])
def test_the_openapi_document_states_the_batch_bound_the_setting_gives(
    settings: Settings, most: int
) -> None:
    # Given a deployment whose TICKERS_MAX_SYMBOLS is not the default,
    bounded = settings.model_copy(update={"tickers_max_symbols": most})
    with (
        serve(create_app(MarketData.from_settings(bounded))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        spec = http.get("/openapi.json").json()
    # then the document states that bound, not the default's.
    parameters = spec["paths"]["/tickers/{exchange}"]["get"]["parameters"]
    (symbols,) = [p for p in parameters if p["name"] == "symbols"]
    assert symbols["description"].startswith(f"1 to {most} symbols")
    assert symbols["schema"]["pattern"].endswith(f"{{0,{most - 1}}}[ ,]*$")


def test_candles_come_as_csv_when_asked_for(client: httpx.Client) -> None:
    query: dict[str, str | int] = {"timeframe": "1m", "limit": 5}
    as_json = client.get("/historical/binance/BTC-USDT", params=query)
    by_accept = client.get(
        "/historical/binance/BTC-USDT", params=query, headers={"Accept": "text/csv"}
    )
    by_format = client.get("/historical/binance/BTC-USDT", params={**query, "format": "csv"})
    for response in (by_accept, by_format):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        lines = response.text.splitlines()
        assert lines[0] == "timestamp,open,high,low,close,volume"
        rows = [line.split(",") for line in lines[1:]]
        assert [int(row[0]) for row in rows] == [c[0] for c in as_json.json()["candles"]]
        assert [float(v) for v in rows[0][1:]] == as_json.json()["candles"][0][1:]
    assert by_format.headers["etag"] != as_json.headers["etag"]
    again = client.get(
        "/historical/binance/BTC-USDT",
        params={**query, "format": "csv"},
        headers={"If-None-Match": by_format.headers["etag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json;q=1, text/csv;q=0.1", "application/json"),
        ("text/csv;q=0.1, application/json", "application/json"),
        ("text/csv;q=0.9, application/json;q=0.5", "text/csv"),
        ("text/*, application/json;q=0.2", "text/csv"),
        ("text/csv;q=0, */*", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("TEXT/CSV; charset=utf-8", "text/csv"),
        ("text/csv;q=bogus, application/json;q=0.1", "application/json"),
    ],
)
def test_candles_follow_the_accept_headers_q_values_and_vary_on_accept(
    client: httpx.Client, accept: str, expected: str
) -> None:
    response = client.get(
        "/historical/binance/BTC-USDT",
        params={"timeframe": "1m", "limit": 3},
        headers={"Accept": accept},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(expected)
    assert "accept" in response.headers["vary"].lower()


def test_both_representations_of_candles_vary_on_accept_with_etags_of_their_own(
    client: httpx.Client,
) -> None:
    url = "/historical/binance/BTC-USDT"
    query: dict[str, str | int] = {"timeframe": "1m", "limit": 3}
    as_json = client.get(url, params=query, headers={"Accept": "application/json"})
    as_csv = client.get(url, params=query, headers={"Accept": "text/csv"})
    assert as_json.headers["etag"] != as_csv.headers["etag"]
    for held, other in ((as_json, as_csv), (as_csv, as_json)):
        accept = held.headers["content-type"].split(";")[0]
        again = client.get(
            url, params=query, headers={"Accept": accept, "If-None-Match": held.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.headers["vary"] == held.headers["vary"]
        assert "accept" in again.headers["vary"].lower()
        # The other representation's ETag does not match this one.
        crossed = client.get(
            url, params=query, headers={"Accept": accept, "If-None-Match": other.headers["etag"]}
        )
        assert crossed.status_code == 200
        assert crossed.headers["etag"] == held.headers["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/tickers/binance?symbols=BTC-USDT,ETH/USDT",
        "/orderbook/binance/BTC/USDT?depth=10",
        "/trades/kraken/BTC-USD?limit=5",
        "/funding/okx/BTC/USDT:USDT",
        "/compare/BTC-USDT?exchanges=binance,kraken",
        "/markets/bybit?quote=USDT&limit=3",
    ],
)
def test_every_kind_of_answer_carries_its_freshness_and_an_etag_that_gives_a_304(
    client: httpx.Client, path: str
) -> None:
    first = client.get(path)
    assert first.status_code == 200, first.text
    assert first.json()["freshness"]["fetched_at"] > 0
    assert first.headers["x-cache"] in ("upstream", "l1")
    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/funding/binance/BTC/USDT", 400, "invalid_parameter"),
        ("/funding/kraken/BTC/USD", 501, "not_supported"),
        ("/funding/coinbaseexchange/BTC-USD", 501, "not_supported"),
        ("/orderbook/binance/BTC/USDT?depth=1001", 400, "invalid_parameter"),
        ("/trades/binance/BTC/USDT?since=1700000000", 400, "invalid_parameter"),
        ("/markets/binance?cursor=nonsense", 400, "invalid_parameter"),
        ("/compare/NOPE-USDT?exchanges=binance", 200, None),
        ("/compare/NOPE-USDT", 404, "unknown_market"),
        ("/tickers/binance?symbols=NOPE-USDT", 200, None),
    ],
)
def test_problems_of_the_new_kinds_are_problem_json(
    client: httpx.Client, path: str, status: int, code: str | None
) -> None:
    response = client.get(path)
    assert response.status_code == status
    if code is not None:
        assert problem(response)["code"] == code
    else:  # reported inside the answer, never failing it
        assert "unknown_market" in response.text


def test_a_malformed_symbol_in_a_batch_is_reported_alone(client: httpx.Client) -> None:
    response = client.get("/tickers/binance", params={"symbols": "BTC-USDT,BTC#USDT,$PEPE/USDT"})
    assert response.status_code == 200
    answer = response.json()
    assert list(answer["tickers"]) == ["BTC/USDT"]
    assert {p["code"] for p in answer["errors"].values()} == {"invalid_parameter"}
    assert set(answer["errors"]) == {"BTC#USDT", "$PEPE/USDT"}
