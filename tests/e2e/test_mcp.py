"""``POST /mcp``: MCP clients nobody here wrote against the app under uvicorn, and the Lambda
handler fed API Gateway's events, many times over in one process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis.strategies import just
from mcp import Client
from mcp.shared.exceptions import MCPError

from infra.exchange_sim import ExchangeSim
from market_proxy import mcp_server
from market_proxy.api.app import create_app
from market_proxy.clock import now_ms
from market_proxy.mcp_server.endpoint import Endpoint
from market_proxy.mcp_server.results import CandlesPage, MarketsPage, TickersBatch, TradesPage
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.http import serve
from tests.support.interpreter import last_json, run_fresh
from tests.support.lambda_api import LambdaApi, lambda_api
from tests.support.mcp_cases import (
    BTC,
    FUZZ,
    JUNK,
    SAME_ASK,
    SDK_MODULES_AFTER_INIT,
    STEADY,
    TOOLS,
    comparable,
    from_input_schema,
    inspector_arguments,
    live_connections,
)
from tests.support.mcp_clients import inspector, problem_of, sdk_session, steady
from tests.support.mcp_events import LEGACY, MODERN, Reply, mcp_event, reply, tool_call

pytestmark = [
    pytest.mark.e2e,
    # Said by Powertools at each invocation that recorded no metric (a refused argument).
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    steady_settings = settings.model_copy(update=STEADY)
    with serve(create_app(MarketData.from_settings(steady_settings))) as url:
        yield url


@pytest.fixture
def api(settings: Settings) -> Iterator[LambdaApi]:
    with lambda_api(settings) as started:
        yield started


def call(api: LambdaApi, event: dict[str, Any]) -> Reply:
    return reply(api.module.handler(event, LambdaContext()))


# -- the SDK's own client, over real HTTP ------------------------------------------------------


@pytest.mark.anyio
async def test_the_sdk_client_lists_every_tool_with_its_schemas_and_hints(served: str) -> None:
    async with sdk_session(served) as session:
        listed = (await session.list_tools()).tools
    assert [tool.name for tool in listed] == TOOLS
    for tool in listed:
        assert tool.description
        assert tool.input_schema["type"] == (tool.output_schema or {}).get("type") == "object"
        assert tool.input_schema["additionalProperties"] is False, tool.name
        hints = tool.annotations.model_dump() if tool.annotations else {}
        assert hints["read_only_hint"] is hints["idempotent_hint"] is True, tool.name
    ohlcv = next(tool for tool in listed if tool.name == "get_ohlcv")
    assert ohlcv.input_schema["required"] == ["exchange", "symbol"]
    assert ohlcv.input_schema["properties"]["limit"]["anyOf"][0]["maximum"] == 20000


@pytest.mark.anyio
async def test_every_tool_answers_what_its_rest_route_answers(served: str) -> None:
    async with sdk_session(served) as session, httpx.AsyncClient(base_url=served) as http:
        for name, arguments, path in SAME_ASK:
            rest = (await http.get(path)).json()
            result = await session.call_tool(name, arguments)
            assert not result.is_error, name
            assert result.structured_content is not None
            assert steady(result.structured_content) == steady(rest), name
            text = result.content[0]
            assert text.type == "text"
            assert json.loads(text.text) == result.structured_content
            if "freshness" in rest:
                fresh = result.structured_content["freshness"]
                assert fresh["fetched_at"] == rest["freshness"]["fetched_at"], name


@pytest.mark.anyio
async def test_a_service_problem_is_an_error_result_carrying_the_problem(
    served: str, sim: ExchangeSim
) -> None:
    async with sdk_session(served) as session:
        unknown = await session.call_tool("get_ticker", {**BTC, "symbol": "NOPE/USDT"})
        sim.inject("binance", "429", endpoint="ticker", times=1, retry_after=7)
        throttled = await session.call_tool("get_ticker", {**BTC, "symbol": "ETH/USDT"})
    assert problem_of(unknown) == {"code": "unknown_market", "retryable": False}
    assert problem_of(throttled) == {
        "code": "upstream_rate_limited",
        "retryable": True,
        "retry_after": 7,
    }


@pytest.mark.anyio
async def test_bad_arguments_are_invalid_params_naming_the_field(served: str) -> None:
    asked: list[tuple[str, dict[str, Any], str]] = [
        ("get_ticker", {"exchange": "binance"}, "symbol"),
        ("get_ohlcv", {**BTC, "limit": 0}, "limit"),
        ("get_trades", {**BTC, "since": "yesterday"}, "since"),
        ("get_tickers", {"exchange": "binance", "symbols": []}, "symbols"),
        ("no_such_tool", {}, "no_such_tool"),
    ]
    async with sdk_session(served) as session:
        for name, arguments, field in asked:
            with pytest.raises(MCPError) as refused:
                await session.call_tool(name, arguments)
            assert refused.value.code == -32602
            assert field in refused.value.message


@pytest.mark.anyio
async def test_an_argument_no_parameter_names_is_invalid_params_naming_it(served: str) -> None:
    # Misspelt, so never silently the defaults (1h, 100 candles).
    async with sdk_session(served) as session:
        with pytest.raises(MCPError) as refused:
            await session.call_tool("get_ohlcv", {**BTC, "timeFrame": "1d", "limt": 2})
    assert refused.value.code == -32602
    assert "timeFrame" in refused.value.message
    assert "limt" in refused.value.message
    assert {e["type"] for e in refused.value.error.data["errors"]} == {"extra_forbidden"}


@pytest.mark.anyio
@pytest.mark.parametrize("lanes", [True, False])
async def test_a_tool_that_crashes_answers_the_problem_rest_answers_for_a_bug(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, lanes: bool
) -> None:
    service = MarketData.from_settings(settings)

    async def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret: the table's password")

    monkeypatch.setattr(service, "ticker", crash)
    endpoint = Endpoint(service, lanes=lanes)
    event = tool_call("get_ticker", BTC)
    try:
        mcp = httpx.ASGITransport(app=endpoint)
        async with httpx.AsyncClient(transport=mcp, base_url="http://x") as http:
            sent = await http.post("/mcp", content=event["body"], headers=event["headers"])
        rest = httpx.ASGITransport(app=create_app(service), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=rest, base_url="http://x") as http:
            bug = await http.get("/ticker/binance/BTC/USDT")
    finally:
        await service.close()
    result = sent.json()["result"]
    assert (sent.status_code, bug.status_code) == (200, 500)
    assert result["isError"] is True
    problem = result["structuredContent"]
    assert problem["code"] == "internal_error"
    assert problem["retryable"] is True
    assert problem == {k: v for k, v in bug.json().items() if k not in ("type", "instance")}
    assert json.loads(result["content"][0]["text"]) == problem
    assert "secret" not in sent.text


@pytest.mark.anyio
async def test_a_2026_client_calls_the_tools_without_a_handshake(served: str) -> None:
    async with Client(f"{served}/mcp", mode=MODERN) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        ticker = await client.call_tool("get_ticker", BTC)
        unknown = await client.call_tool("get_ticker", {**BTC, "symbol": "NOPE/USDT"})
        with pytest.raises(MCPError) as refused:
            await client.call_tool("get_ticker", {"exchange": "binance"})
    assert names == TOOLS
    assert ticker.structured_content is not None
    assert ticker.structured_content["symbol"] == "BTC/USDT"
    assert problem_of(unknown) == {"code": "unknown_market", "retryable": False}
    assert refused.value.code == -32602


def test_no_request_opens_an_event_stream_that_never_ends(served: str) -> None:
    listen = mcp_event("subscriptions/listen", {"notifications": {}}, version=MODERN)
    with httpx.Client(base_url=served, timeout=5) as http:
        opened = http.get("/mcp", headers={"Accept": "text/event-stream"})
        deleted = http.delete("/mcp")
        listened = http.post("/mcp", content=listen["body"], headers=listen["headers"])
    for refused in (opened, deleted):
        assert refused.status_code == 405
        assert refused.headers["allow"] == "POST"
        assert refused.headers["content-type"] == "application/problem+json"
    # 2026-07-28's subscriptions/listen is a stream that never ends: not served.
    assert listened.headers["content-type"] == "application/json"
    assert listened.json()["error"]["code"] == -32601


# -- a client nobody here wrote, from npm ------------------------------------------------------


def test_the_mcp_inspector_cli_lists_and_calls_every_tool(settings: Settings) -> None:
    # Served as `make run` serves it: on a laptop, so Host and Origin are checked too.
    local = settings.model_copy(update={"local_run": True, **STEADY})
    ticker = ["--tool-name", "get_ticker", "--tool-arg", "exchange=binance"]
    with serve(create_app(MarketData.from_settings(local))) as url, httpx.Client() as http:
        listed_exit, listed = inspector(url, "--method", "tools/list", "--strict")
        # Each CLI run starts Node (about a second): all at once.
        with ThreadPoolExecutor(len(SAME_ASK) + 1) as pool:
            called = list(
                pool.map(
                    lambda asked: inspector(
                        url,
                        "--method",
                        "tools/call",
                        "--tool-name",
                        asked[0],
                        *inspector_arguments(asked[1]),
                    ),
                    SAME_ASK,
                )
            )
            unknown_exit, unknown = pool.submit(
                inspector, url, "--method", "tools/call", *ticker, "symbol=NOPE"
            ).result()
        rest = [http.get(f"{url}{path}").json() for _, _, path in SAME_ASK]
    assert listed_exit == 0
    assert [tool["name"] for tool in listed["tools"]] == TOOLS
    for (name, _, _), (found_exit, found), answer in zip(SAME_ASK, called, rest, strict=True):
        assert found_exit == 0, (name, found)
        assert found.get("isError") is not True, (name, found)
        assert steady(found["structuredContent"]) == steady(answer), name
        if "freshness" in answer:
            assert found["structuredContent"]["freshness"]["fetched_at"] > 0, name
    # The CLI checks even an error result's structuredContent against the tool's output
    # schema: it admits a problem, so the problem is shown, and the exit code says isError.
    assert unknown_exit == 5
    assert unknown["isError"] is True
    assert unknown["structuredContent"]["code"] == "unknown_market"


# -- the Lambda handler, fed API Gateway's events ----------------------------------------------


def test_the_handler_answers_every_call_many_times_and_keeps_nothing(api: LambdaApi) -> None:
    hello = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t"}}
    asked = [
        (mcp_event("initialize", hello, version=None), 200),
        (mcp_event("notifications/initialized", request_id=None), 202),
        (mcp_event("tools/list"), 200),
        *((tool_call(name, arguments), 200) for name, arguments, _ in SAME_ASK),
        (tool_call("get_ticker", BTC, version=MODERN), 200),
        (tool_call("get_ticker", {**BTC, "symbol": "NOPE/USDT"}), 200),
        (tool_call("get_ticker", {"exchange": "binance"}), 200),
        (rest_event("/mcp", headers={"Accept": "text/event-stream"}), 405),
    ]
    # API Gateway's Host (<id>.execute-api.<region>.amazonaws.com) is served.
    assert all(event["headers"]["Host"].endswith(".amazonaws.com") for event, _ in asked)
    kept: list[list[str]] = []
    connections = live_connections()
    for _ in range(8):
        for event, status in asked:
            answer = call(api, event)
            assert answer.status == status, answer
            assert "error" not in (answer.body or {}) or answer.error["code"] == -32602
        # Only the cache's own read-ahead refreshes may be pending between invocations.
        pending = [repr(task.get_coro()) for task in asyncio.all_tasks(api.loop)]
        kept.append([coroutine for coroutine in pending if "ReadThrough" not in coroutine])
    assert len(asked) * 8 >= 100
    assert kept == [[]] * 8, kept
    assert live_connections() <= connections, "connections kept"
    rest = json.loads(api.get("/ticker/binance/BTC/USDT").text)
    assert steady(call(api, tool_call("get_ticker", BTC)).structured) == steady(rest)


@pytest.mark.anyio
async def test_on_a_laptop_a_rebound_host_or_a_foreign_origin_is_refused(
    settings: Settings,
) -> None:
    local = settings.model_copy(update={"local_run": True})
    laptop = httpx.ASGITransport(app=create_app(MarketData.from_settings(local)))
    event = mcp_event("ping")
    async with httpx.AsyncClient(transport=laptop, base_url="http://127.0.0.1:8000") as http:

        async def ping(**headers: str) -> int:
            sent = {**event["headers"], **headers}
            return (await http.post("/mcp", content=event["body"], headers=sent)).status_code

        assert await ping(Host="127.0.0.1:8000") == 200
        assert await ping(Host="evil.example:8000") == 421
        assert await ping(Host="127.0.0.1:8000", Origin="http://evil.example:8000") == 403


@pytest.mark.anyio
@pytest.mark.parametrize("version", [LEGACY, MODERN])
async def test_the_tools_call_lane_answers_as_the_sdks_kernel_does(
    settings: Settings, version: str
) -> None:
    service = MarketData.from_settings(settings)
    endpoints = (Endpoint(service), Endpoint(service, lanes=False))
    asked = [
        tool_call("get_ticker", BTC, version=version),
        tool_call("get_ticker", {**BTC, "symbol": "NOPE/USDT"}, version=version),
        tool_call("get_ohlcv", {**BTC, "limit": 0}, version=version),
        tool_call("nope", {}, version=version),
        mcp_event("tools/list", version=version),
        mcp_event("tools/list", version=version),  # the lane's from its cache
    ]
    try:
        for event in asked:
            answers = []
            for endpoint in endpoints:
                transport = httpx.ASGITransport(app=endpoint)
                async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
                    sent = await http.post("/mcp", content=event["body"], headers=event["headers"])
                answers.append((sent.status_code, comparable(sent.json())))
            assert answers[0] == answers[1], event["body"]
    finally:
        await service.close()


# -- bounded results ---------------------------------------------------------------------------


def test_results_are_cut_to_the_setting_and_say_so(api: LambdaApi, settings: Settings) -> None:
    most = 4096
    api.container(settings.model_copy(update={"mcp_max_result_bytes": most}), now_ms)

    def result(name: str, on: dict[str, Any] = BTC, **arguments: Any) -> dict[str, Any]:
        # What the agent receives, both blocks and the envelope, in either era.
        for version in (MODERN, LEGACY):
            found = call(api, tool_call(name, {**on, **arguments}, version=version)).result
            assert len(json.dumps(found, separators=(",", ":"), ensure_ascii=False)) <= most
        return found

    page = CandlesPage.model_validate(
        result("get_ohlcv", timeframe="1m", limit=300)["structuredContent"]
    )
    assert page.truncated
    assert page.omitted == 300 - len(page.candles) > 0
    following = result("get_ohlcv", timeframe="1m", since=page.next_since, limit=5)
    assert following["structuredContent"]["candles"][0][0] == page.next_since

    trades = TradesPage.model_validate(result("get_trades", limit=100)["structuredContent"])
    rest = json.loads(api.get("/trades/binance/BTC/USDT", query={"limit": "100"}).text)
    assert trades.truncated
    assert trades.omitted == 100 - len(trades.trades)
    assert trades.model_dump(mode="json")["trades"] == rest["trades"][trades.omitted :]

    spot_markets: dict[str, Any] = {"exchange": "binance", "type": "spot"}
    markets = MarketsPage.model_validate(
        result("search_markets", spot_markets)["structuredContent"]
    )
    assert markets.truncated
    assert markets.next_cursor is not None
    spot = [market.symbol for market in markets.markets]
    # The next page starts right after the last market kept.
    following = result("search_markets", spot_markets, cursor=markets.next_cursor, limit=1)
    listed = json.loads(api.get("/markets/binance", query={"type": "spot", "limit": "500"}).text)
    after = [market["symbol"] for market in listed["markets"]][len(spot)]
    assert following["structuredContent"]["markets"][0]["symbol"] == after
    tickers = call(api, tool_call("get_tickers", {"exchange": "binance", "symbols": spot}))
    assert TickersBatch.model_validate(tickers.structured).omitted > 0

    book = call(api, tool_call("get_orderbook", {**BTC, "depth": 100})).result  # ask for less
    assert book["isError"]
    assert book["structuredContent"]["parameter"] == "depth"


def test_candles_from_since_are_paged_upstream_only_as_far_as_a_result_holds(
    api: LambdaApi, settings: Settings, sim: ExchangeSim
) -> None:
    most = 8192
    api.container(settings.model_copy(update={"mcp_max_result_bytes": most}), now_ms)
    since = (now_ms() - 30 * 86_400_000) // 60_000 * 60_000  # 43,200 one-minute candles ago
    asked = {**BTC, "timeframe": "1m", "since": since, "limit": 20000}
    page = CandlesPage.model_validate(call(api, tool_call("get_ohlcv", asked)).structured)
    # 20,000 candles are 20 of the exchange's pages; what 8 KiB holds is in its first.
    assert sim.calls("binance", "ohlcv") == 1
    assert page.candles[0][0] == since
    assert page.next_since == since + len(page.candles) * 60_000
    following = call(api, tool_call("get_ohlcv", {**asked, "since": page.next_since}))
    assert following.structured["candles"][0][0] == page.next_since


# -- junk arguments ----------------------------------------------------------------------------


def test_arguments_drawn_from_each_tools_schema_are_answered_never_a_failure(
    api: LambdaApi,
) -> None:
    schemas = {
        tool["name"]: tool["inputSchema"]
        for tool in call(api, mcp_event("tools/list")).result["tools"]
    }
    reached: dict[str, int] = dict.fromkeys(TOOLS, 0)

    def refused_or_answered(name: str, arguments: Any) -> None:
        answer = call(api, tool_call(name, arguments))
        assert answer.status == 200, answer
        if "error" in answer.body:
            assert answer.error["code"] == -32602, answer.body
            return
        reached[name] += 1
        if answer.result["isError"]:  # a service problem, never a crash
            assert {"code", "retryable", "detail"} <= set(answer.structured), answer.body
            assert answer.structured["code"] != "internal_error", answer.body

    for name in TOOLS:
        # Mostly what the schema admits (the service's own refusals and answers), and junk.
        drawn = from_input_schema(schemas[name]) | from_input_schema(schemas[name]) | JUNK
        FUZZ(given(name=just(name), arguments=drawn)(refused_or_answered))()
    assert all(reached.values()), reached


# -- what the REST routes do not pay -----------------------------------------------------------


def test_the_rest_routes_cold_start_does_not_import_the_sdk() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": f"{root}/functions:{root}", "PATH": "/usr/bin:/bin"}
    assert last_json(run_fresh(SDK_MODULES_AFTER_INIT, env=env, cwd=root)) == []


def test_preload_builds_the_tools_before_the_first_request(api: LambdaApi) -> None:
    mcp_server.preload(api.module.app)
    routes = api.module.app.router.routes
    (route,) = [found for found in routes if getattr(found, "path", None) == mcp_server.PATH]
    built = route.endpoint.built
    assert isinstance(built, Endpoint)
    assert built.service is api.module.app.state.market
    assert call(api, tool_call("get_ticker", BTC)).structured["symbol"] == "BTC/USDT"
    assert route.endpoint.built is built
