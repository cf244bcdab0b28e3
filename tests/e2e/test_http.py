"""The app over real HTTP under uvicorn, as `make run` and the stream function serve it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.api.app import create_app
from market_proxy.api.schemas import Candles, Problem, Ticker
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.http import serve

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with (
        serve(create_app(MarketData.from_settings(settings))) as url,
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
