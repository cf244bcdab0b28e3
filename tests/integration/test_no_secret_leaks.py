"""Exchange credentials configured through EXCHANGE_OPTIONS reach the exchange and nothing else.

Every credential is a marker string. With every logger of the process at DEBUG, the handler
is cold-started, every exchange fault is driven (cold cache), and every endpoint is asked,
the live stream included; then no marker may appear in anything printed or logged, nor in
any status line, header or body. The loopback exchange's own record shows that the markers
were in flight, so that the test cannot pass because nothing was sent.
"""

from __future__ import annotations

import base64
import json
import traceback
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from infra.exchange_sim import ExchangeSim
from infra.exchange_sim.faults import KINDS
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.api.app import create_app
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings, SettingsError
from tests.support.clock import SharedClock
from tests.support.http import serve
from tests.support.lambda_api import LambdaApi, Reply, lambda_api_on_new_table
from tests.support.output import captured
from tests.support.stack import EXCHANGES

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
FIELDS = ("apiKey", "secret", "password", "uid", "privateKey")


def marker(exchange: str, what: str) -> str:
    return f"leakmark{RUN}{exchange}{what}"


MARKERS = [marker(ex, what) for ex in EXCHANGES for what in (*FIELDS, "bearer", "token", "url")]
URL_CREDENTIALS = "kraken"


def credentials(sim: ExchangeSim, *, down: str | None = None) -> dict[str, dict[str, Any]]:
    """EXCHANGE_OPTIONS pointing at the loopback exchange, every credential a marker: the
    fields ccxt signs with, auth headers, and (Kraken) a user:password in the API URLs
    (aiohttp takes an Authorization header or credentials in the URL, not both)."""
    options = {}
    for exchange in EXCHANGES:
        urls = sim.ccxt_options_down(exchange) if exchange == down else sim.ccxt_options(exchange)
        headers = {"X-Api-Token": marker(exchange, "token")}
        if exchange == URL_CREDENTIALS:
            userinfo = f"://operator:{marker(exchange, 'url')}@127.0.0.1"
            urls = json.loads(json.dumps(urls).replace("://127.0.0.1", userinfo))
        else:
            headers["Authorization"] = f"Bearer {marker(exchange, 'bearer')}"
        options[exchange] = {
            **urls,
            **{field: marker(exchange, field) for field in FIELDS},
            "headers": headers,
            "verbose": True,  # ccxt would print every request's headers to stdout
        }
    return options


def test_credentials_reach_the_exchange_and_nothing_else(
    dynamodb_local: DynamoDBLocal, sim: ExchangeSim
) -> None:
    seen: list[str] = []
    with captured(everything=True) as printed:
        with lambda_api_on_new_table(
            dynamodb_local.endpoint, sim, exchange_options=credentials(sim)
        ) as api:
            seen += [dump(reply) for reply in every_fault(api, sim)]
            seen += [dump(reply) for reply in every_endpoint(api, sim)]
        seen += live_stream_with_a_fault(api.module.service.settings, sim)

    assert_in_flight(sim)
    assert len(seen) > 2 * (len(KINDS) + 1)
    everything = printed.getvalue() + "\n".join(seen)
    assert "upstream call failed" in everything, "the failures were logged"
    assert "verbose mode" in everything, "the refusal of ccxt's verbose mode was logged"
    leaked = [m for m in MARKERS if m in everything]
    assert leaked == []


def every_fault(api: LambdaApi, sim: ExchangeSim) -> list[Reply]:
    replies = []
    base: Settings = api.module.service.settings
    clock = SharedClock(now_ms(), sim)
    for exchange in EXCHANGES:
        spot = [market.id for market in sim.book.of_kind(exchange, "spot")]
        for market, fault in zip(spot, (*KINDS, "refused"), strict=False):
            down = exchange if fault == "refused" else None
            settings = base.model_copy(
                update={
                    "exchange_options": credentials(sim, down=down),
                    "upstream_timeout_ms": 500,
                }
            )
            api.container(settings, clock)
            api.lift_pauses()
            if down is None:
                sim.inject(exchange, fault, times=2, retry_after=3, delay_s=2)
            replies.append(api.get(f"/ticker/{exchange}/{market}"))
            sim.clear_faults()
        api.container(base, clock)
        sim.inject(exchange, "502", endpoint="ohlcv")
        replies.append(api.get(f"/historical/{exchange}/{spot[-1]}", query={"limit": "5"}))
    assert all(reply.status in (404, 429, 502, 503, 504) for reply in replies), [
        reply.status for reply in replies
    ]
    return replies


def every_endpoint(api: LambdaApi, sim: ExchangeSim) -> list[Reply]:
    api.container(api.module.service.settings, SharedClock(now_ms(), sim))
    replies = [
        api.get(path, query=query)
        for path, query in (
            ("/ticker/binance/BTC-USDT", None),
            ("/ticker/kraken/XBTUSDT", None),
            ("/historical/kraken/BTC-USD", {"timeframe": "1h", "limit": "3"}),
            ("/exchanges", None),
            ("/health", None),
            ("/health", {"deep": "true"}),
            ("/problems", None),
            ("/openapi.json", None),
            ("/docs", None),
            ("/", None),
            ("/ticker/binance/NOPE-USDT", None),
            ("/ticker/nosuch/BTC-USDT", None),
            ("/historical/binance/BTC-USDT", {"timeframe": "7m"}),
            ("/nothing/here", None),
        )
    ]

    assert [reply.status for reply in replies[:10]] == [200] * 10
    return replies


def live_stream_with_a_fault(settings: Settings, sim: ExchangeSim) -> list[str]:
    """The stream function's app under uvicorn: a problem event for a failing market."""
    sim.inject("binance", "502", endpoint="ticker", times=10)
    events = []
    with (
        serve(create_app(MarketData.from_settings(settings))) as url,
        httpx.Client(base_url=url, timeout=10) as client,
        connect_sse(client, "GET", "/sse/ticker/binance/ETH-BTC") as source,
    ):
        for sent in source.iter_sse():
            events.append(f"{sent.event} {sent.data}")
            if sent.event == "problem":
                break
    assert events[-1].startswith("problem ")
    return events


def dump(reply: Reply) -> str:
    return json.dumps([reply.status, reply.headers, reply.text])


def assert_in_flight(sim: ExchangeSim) -> None:
    sent = [call.headers for call in sim.call_log()]
    for exchange in EXCHANGES:
        assert any(h.get("X-Api-Token") == marker(exchange, "token") for h in sent), exchange
    basic = base64.b64encode(f"operator:{marker(URL_CREDENTIALS, 'url')}".encode()).decode()
    assert any(h.get("Authorization") == f"Basic {basic}" for h in sent)
    assert any(h.get("Authorization") == f"Bearer {marker('binance', 'bearer')}" for h in sent)
    assert any(h.get("X-MBX-APIKEY") == marker("binance", "apiKey") for h in sent)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(f'{{"binance": {{"apiKey": "{MARKERS[0]}"', id="not-json"),
        pytest.param(f'{{"binance": "{MARKERS[0]}"}}', id="not-a-mapping"),
        pytest.param(f'["{MARKERS[0]}"]', id="a-list"),
    ],
)
def test_a_bad_exchange_options_variable_is_refused_without_quoting_it(options: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"EXCHANGE_OPTIONS": options})
    told = "".join(traceback.format_exception(refused.value))
    assert "EXCHANGE_OPTIONS" in told
    assert MARKERS[0] not in told


def test_settings_do_not_show_credentials_in_their_repr(sim: ExchangeSim) -> None:
    settings = Settings(exchange_options=credentials(sim))
    assert [m for m in MARKERS if m in repr(settings) or m in str(settings)] == []
