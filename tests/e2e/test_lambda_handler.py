"""ApiFunction's handler, fed the events API Gateway (REST) really sends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.lambda_module import cold_starts

pytestmark = pytest.mark.e2e
Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def cold_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Settings], ModuleType]]:
    """Import the handler module afresh with the given settings as its environment."""
    with cold_starts(monkeypatch) as start:
        yield lambda settings: start("api_handler", settings)


def invoke(module: ModuleType, path: str, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(rest_event(path, **kwargs), LambdaContext())
    return response


def body(response: dict[str, Any]) -> Any:
    # API Gateway has no binary media types here: a base64 body would reach clients as is.
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


def test_three_invocations_reuse_one_exchange_client_and_load_markets_once(
    cold_start: Callable[[Settings], ModuleType], settings: Settings, sim: ExchangeSim
) -> None:
    module = cold_start(settings)
    sim.set_ticker("binance", "BTCUSDT", last=61000.5, bid=61000.0, ask=61001.0)
    responses = [
        invoke(module, p)
        for p in ("/ticker/binance/BTC/USDT", "/ticker/binance/ETH-USDT", "/ticker/binance/BTCUSDT")
    ]
    assert [r["statusCode"] for r in responses] == [200, 200, 200]
    assert body(responses[0])["last"] == 61000.5
    assert body(responses[2])["freshness"]["source"] == "l1"
    assert sim.calls("binance", "markets") == 3, "spot, linear, inverse: once"
    assert sim.calls("binance", "ticker") == 2
    client = module.service._gateway.client("binance")
    assert client is module.service._gateway.client("binance")
    assert client.session is not None
    assert not client.session.closed


def test_a_ticker_answer_carries_freshness_in_body_and_headers(
    cold_start: Callable[[Settings], ModuleType], settings: Settings, sim: ExchangeSim
) -> None:
    module = cold_start(settings)
    response = invoke(module, "/ticker/kraken/XBTUSDT", request_id="req-123")
    headers = {k.lower(): v for k, v in response["headers"].items()}
    data = body(response)
    assert response["statusCode"] == 200
    assert data["symbol"] == "BTC/USDT"
    assert data["market_id"] == "XBTUSDT"
    assert data["freshness"]["source"] == "upstream"
    assert headers["x-cache"] == "upstream"
    assert headers["etag"].startswith('"')
    assert headers["cache-control"].startswith("public, max-age=")
    assert headers["x-request-id"] == "req-123", "API Gateway's request id is the correlation id"
    assert headers["content-type"] == "application/json"


def test_the_stage_prefix_and_query_strings_arrive_as_the_app_expects(
    cold_start: Callable[[Settings], ModuleType], settings: Settings
) -> None:
    module = cold_start(settings)
    response = invoke(
        module, "/historical/binance/BTC/USDT", query={"timeframe": "1h", "limit": "5"}
    )
    assert response["statusCode"] == 200
    data = body(response)
    assert data["timeframe"] == "1h"
    assert data["returned"]["candles"] == 5


def test_health_and_exchanges_answer(
    cold_start: Callable[[Settings], ModuleType], settings: Settings
) -> None:
    module = cold_start(settings)
    health = invoke(module, "/health", query={"deep": "true"})
    assert body(health) == {
        "status": "ok",
        "exchanges": list(settings.exchanges),
        "circuits": dict.fromkeys(settings.exchanges, "closed"),
        "cache": {"status": "ok", "table": settings.table_name},
    }
    exchanges = body(invoke(module, "/exchanges"))["exchanges"]
    assert [e["id"] for e in exchanges] == list(settings.exchanges)
    assert "1m" in exchanges[0]["timeframes"]


def test_if_none_match_gives_304(
    cold_start: Callable[[Settings], ModuleType], settings: Settings
) -> None:
    module = cold_start(settings)
    first = invoke(module, "/ticker/binance/BTC/USDT")
    etag = {k.lower(): v for k, v in first["headers"].items()}["etag"]
    second = invoke(module, "/ticker/binance/BTC/USDT", headers={"If-None-Match": etag})
    assert second["statusCode"] == 304
    assert second["body"] == ""


@pytest.mark.parametrize(
    ("path", "query", "fault", "status", "code"),
    [
        ("/ticker/nosuchexchange/BTC-USDT", None, None, 404, "unknown_exchange"),
        ("/ticker/binance/NOPE-USDT", None, None, 404, "unknown_market"),
        ("/ticker/binance/BTC USDT", None, None, 400, "invalid_parameter"),
        ("/historical/binance/BTC-USDT", {"timeframe": "7m"}, None, 400, "invalid_parameter"),
        ("/historical/binance/BTC-USDT", {"limit": "0"}, None, 422, "invalid_request"),
        ("/historical/binance/BTC-USDT", {"limit": "9999999"}, None, 400, "invalid_parameter"),
        ("/historical/binance/BTC-USDT", {"limit": "ten"}, None, 422, "invalid_request"),
        ("/historical/binance/BTC-USDT", {"since": "yesterday"}, None, 400, "invalid_parameter"),
        ("/ticker/binance/BTC-USDT", None, "429", 429, "upstream_rate_limited"),
        ("/ticker/binance/BTC-USDT", None, "418", 503, "upstream_banned"),
        ("/ticker/binance/BTC-USDT", None, "503", 503, "upstream_unavailable"),
        ("/ticker/binance/BTC-USDT", None, "timeout", 504, "upstream_timeout"),
        ("/ticker/binance/BTC-USDT", None, "malformed_json", 502, "upstream_bad_response"),
        ("/nothing/here", None, None, 404, "not_found"),
    ],
)
def test_failures_are_problem_json_with_the_status_design_names(
    cold_start: Callable[[Settings], ModuleType],
    settings: Settings,
    sim: ExchangeSim,
    path: str,
    query: dict[str, str] | None,
    fault: str | None,
    status: int,
    code: str,
) -> None:
    module = cold_start(settings.model_copy(update={"upstream_timeout_ms": 500}))
    if fault is not None:
        sim.inject("binance", fault, endpoint="ticker", times=1, retry_after=7, delay_s=2)
    response = invoke(module, path, query=query)
    headers = {k.lower(): v for k, v in response["headers"].items()}
    problem = body(response)
    assert response["statusCode"] == status
    assert headers["content-type"] == "application/problem+json"
    assert problem["status"] == status
    assert problem["code"] == code
    assert isinstance(problem["retryable"], bool)
    assert problem["type"] == f"/problems/{code}"
    if status == 429:
        assert headers["retry-after"] == "7"


def test_an_exchange_that_refuses_connections_is_503(
    cold_start: Callable[[Settings], ModuleType], settings: Settings, sim: ExchangeSim
) -> None:
    down = {**settings.exchange_options, "binance": sim.ccxt_options_down("binance")}
    module = cold_start(settings.model_copy(update={"exchange_options": down}))
    response = invoke(module, "/ticker/binance/BTC-USDT")
    assert response["statusCode"] == 503
    assert body(response)["retryable"] is True
    assert "retry-after" in {k.lower() for k in response["headers"]}
