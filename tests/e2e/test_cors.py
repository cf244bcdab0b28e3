"""Browsers on other origins, through ApiFunction's handler: CORS as CORS_ALLOW_ORIGINS says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.lambda_module import cold_starts
from tests.support.mcp_events import mcp_event

pytestmark = pytest.mark.e2e
PAGE = "https://dashboard.example.com"


@pytest.fixture
def handler_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    with cold_starts(monkeypatch) as start:
        yield lambda settings: start("api_handler", settings)


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in (response["headers"] or {}).items()}


def test_a_preflight_from_an_allowed_origin_is_answered_without_an_api_call(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings.model_copy(update={"cors_allow_origins": (PAGE,)}))
    preflight = rest_event(
        "/ticker/binance/BTC-USDT",
        method="OPTIONS",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    response = module.handler(preflight, LambdaContext())
    headers = headers_of(response)
    assert response["statusCode"] == 200
    assert headers["access-control-allow-origin"] == PAGE
    assert "GET" in headers["access-control-allow-methods"]
    assert "if-none-match" in headers["access-control-allow-headers"].lower()


def test_an_answer_to_an_allowed_origin_exposes_the_freshness_headers(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings.model_copy(update={"cors_allow_origins": (PAGE,)}))
    response = module.handler(
        rest_event("/ticker/binance/BTC-USDT", headers={"Origin": PAGE}), LambdaContext()
    )
    headers = headers_of(response)
    assert response["statusCode"] == 200
    assert headers["access-control-allow-origin"] == PAGE
    exposed = headers["access-control-expose-headers"].lower()
    assert {"etag", "x-cache", "x-data-age-ms", "retry-after"} <= set(exposed.split(", "))


def test_without_allowed_origins_no_page_elsewhere_may_read_answers(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings)
    response = module.handler(
        rest_event("/ticker/binance/BTC-USDT", headers={"Origin": PAGE}), LambdaContext()
    )
    assert response["statusCode"] == 200
    assert "access-control-allow-origin" not in headers_of(response)


def preflight(path: str, method: str, headers: str) -> dict[str, Any]:
    return rest_event(
        path,
        method="OPTIONS",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_a_page_of_an_allowed_origin_may_call_the_mcp_endpoint(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings.model_copy(update={"cors_allow_origins": (PAGE,)}))
    sent = "content-type,mcp-protocol-version,mcp-session-id,last-event-id,x-api-key"
    asked = module.handler(preflight("/mcp", "POST", sent), LambdaContext())
    answered = module.handler(mcp_event("tools/list", headers={"Origin": PAGE}), LambdaContext())
    headers = headers_of(asked)
    assert asked["statusCode"] == 200
    assert headers["access-control-allow-origin"] == PAGE
    assert "POST" in headers["access-control-allow-methods"]
    assert set(sent.split(",")) <= set(headers["access-control-allow-headers"].lower().split(", "))
    assert answered["statusCode"] == 200
    exposed = headers_of(answered)["access-control-expose-headers"].lower().split(", ")
    assert headers_of(answered)["access-control-allow-origin"] == PAGE
    assert {"mcp-session-id", "x-request-id"} <= set(exposed)


def test_post_is_allowed_only_where_a_route_takes_it(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings.model_copy(update={"cors_allow_origins": (PAGE,)}))
    refused = module.handler(
        preflight("/ticker/binance/BTC-USDT", "POST", "content-type"), LambdaContext()
    )
    assert refused["statusCode"] == 400
    assert "POST" not in headers_of(refused).get("access-control-allow-methods", "")


def test_a_preflight_carrying_the_api_key_passes_on_every_route(
    handler_with: Callable[..., ModuleType], settings: Settings
) -> None:
    module = handler_with(settings.model_copy(update={"cors_allow_origins": (PAGE,)}))
    asked = [
        ("/ticker/binance/BTC-USDT", "GET", "x-api-key,if-none-match"),
        ("/sse/ticker/binance/BTC-USDT", "GET", "x-api-key,last-event-id"),
        ("/mcp", "POST", "x-api-key,content-type"),
    ]
    for path, method, sent in asked:
        response = module.handler(preflight(path, method, sent), LambdaContext())
        headers = headers_of(response)
        assert response["statusCode"] == 200, path
        assert headers["access-control-allow-origin"] == PAGE, path
        assert "x-api-key" in headers["access-control-allow-headers"].lower(), path
