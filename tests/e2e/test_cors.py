"""Browsers on other origins, through ApiFunction's handler: CORS as CORS_ALLOW_ORIGINS says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.lambda_module import cold_starts

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
