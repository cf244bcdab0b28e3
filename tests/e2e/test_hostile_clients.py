"""Clients and events that do not play by the rules: malformed Lambda events, streams asked
of the buffered API function, request ids no one should echo, HEAD, and error bodies that
echo what a client sent (so every answer says ``nosniff``).

The Lambda cases go through ApiFunction's real handler; the HTTP ones through uvicorn on
loopback, as the stream function and ``make run`` serve the app. Hostile bytes that an HTTP
client library refuses to send go over a raw socket.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.api.app import create_app
from market_proxy.api.problems import PROBLEM_JSON
from market_proxy.api.schemas import Problem
from market_proxy.service import MarketData
from tests.support.apigw import LambdaContext, rest_event
from tests.support.emf import log_records
from tests.support.events import malformed_events
from tests.support.http import Served, serving
from tests.support.lambda_api import LambdaApi, lambda_api_on_new_table
from tests.support.mcp_events import ACCEPT, LEGACY
from tests.support.output import captured
from tests.support.stack import drop_table, new_table, settings_for

pytestmark = pytest.mark.e2e

ORIGIN = "https://dashboard.example.com"
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MALFORMED = malformed_events()
STREAM = "/sse/ticker/binance/BTC-USDT"


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[LambdaApi]:
    with lambda_api_on_new_table(dynamodb_local.endpoint, exchange_sim_session) as api:
        yield api


@pytest.fixture(scope="module")
def served(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[Served]:
    """The app under uvicorn as the stream function runs it (streams on, CORS for one page)."""
    table = new_table(dynamodb_local.endpoint)
    settings = settings_for(
        dynamodb_local.endpoint, table, exchange_sim_session, cors_allow_origins=(ORIGIN,)
    )
    try:
        with serving(create_app(MarketData.from_settings(settings))) as running:
            yield running
    finally:
        drop_table(dynamodb_local.endpoint, table)


@pytest.fixture
def client(served: Served, sim: ExchangeSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        yield http


def invoke(api: LambdaApi, event: Any) -> dict[str, Any]:
    response: dict[str, Any] = api.module.handler(event, LambdaContext())
    return response


def lowered(headers: dict[str, str] | None) -> dict[str, str]:
    return {name.lower(): value for name, value in (headers or {}).items()}


def problem_of(response: dict[str, Any], status: int) -> dict[str, Any]:
    """The problem+json body of a handler's answer, checked for API Gateway's REST shape."""
    assert response["statusCode"] == status
    assert response["isBase64Encoded"] is False
    headers = lowered(response["headers"])
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["x-content-type-options"] == "nosniff"
    assert SAFE_ID.fullmatch(headers["x-request-id"])
    body: dict[str, Any] = json.loads(response["body"])
    Problem.model_validate(body)
    assert body["status"] == status
    return body


def raw_request(served: Served, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (a request line and headers, ending in a blank line) as it is; the
    answer's status, headers (the last of each name) and body."""
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head_part, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(path: str, *headers: bytes) -> bytes:
    """A GET of ``path`` with these raw header lines, on a connection closed after it."""
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --- 1. Malformed Lambda events -----------------------------------------------------------


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_event_is_answered_400_malformed_request_in_rest_proxy_shape(
    api: LambdaApi, name: str
) -> None:
    problem = problem_of(invoke(api, MALFORMED[name]), 400)
    assert problem["code"] == "malformed_request"
    assert problem["type"] == "/problems/malformed_request"
    assert problem["retryable"] is False


def test_a_malformed_event_is_logged_with_its_shape_and_never_its_values(api: LambdaApi) -> None:
    secret = "s3cr3t-header-value"
    event = rest_event("/health", headers={"Authorization": secret})
    event["multiValueHeaders"]["X-Odd"] = "not a list"  # what makes it malformed
    event["requestContext"]["requestId"] = "gw-req-77"
    with captured() as output:
        response = invoke(api, event)

    problem_of(response, 400)
    assert lowered(response["headers"])["x-request-id"] == "gw-req-77"
    (record,) = log_records(output.getvalue(), "event is not a request")
    assert record["level"] == "WARNING"
    assert record["correlation_id"] == "gw-req-77"
    assert "multiValueHeaders" in record["reason"]
    assert record["event_shape"]["headers"]["Authorization"] == f"str({len(secret)})"
    assert record["event_shape"]["multiValueHeaders"]["X-Odd"] == "str(10)"
    assert secret not in output.getvalue()


def test_an_event_with_an_unsafe_request_id_gets_a_new_one(api: LambdaApi) -> None:
    for unsafe in ("evil\r\nSet-Cookie: a=1", "x" * 60_000, "caf\u00e9", ""):
        response = invoke(api, rest_event("/health", request_id=unsafe))
        assert response["statusCode"] == 200
        headers = lowered(response["headers"])
        assert UUID.fullmatch(headers["x-request-id"]), unsafe[:20]
        assert "set-cookie" not in headers


def test_a_well_formed_event_still_reaches_the_app(api: LambdaApi) -> None:
    response = invoke(api, rest_event("/health", request_id="gw-req-1"))
    assert response["statusCode"] == 200
    assert lowered(response["headers"])["x-request-id"] == "gw-req-1"
    assert json.loads(response["body"])["status"] == "ok"


# --- 2. Streams asked of the buffered API function ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [STREAM, "/sse/tickers/binance?symbols=BTC-USDT", "/sse/orderbook/kraken/BTC-USD", "/sse/x"],
)
def test_the_api_function_refuses_a_stream_at_once_pointing_at_the_stream_function(
    api: LambdaApi, path: str
) -> None:
    route, _, query = path.partition("?")
    event = rest_event(route, query=dict([query.split("=")]) if query else None)
    problem = problem_of(invoke(api, event), 404)
    assert problem["code"] == "not_found"
    assert "stream function's URL" in problem["detail"]
    assert problem["instance"] == route


def test_the_api_functions_openapi_document_still_documents_the_streams(api: LambdaApi) -> None:
    response = invoke(api, rest_event("/openapi.json"))
    assert response["statusCode"] == 200
    paths = json.loads(response["body"])["paths"]
    assert {
        "/sse/ticker/{exchange}/{symbol}",
        "/sse/tickers/{exchange}",
        "/sse/orderbook/{exchange}/{symbol}",
    } <= set(paths)


def test_the_api_function_answers_head_as_get_without_a_body(api: LambdaApi) -> None:
    got = invoke(api, rest_event("/health"))
    head = invoke(api, rest_event("/health", method="HEAD"))
    assert head["statusCode"] == got["statusCode"] == 200
    assert head["body"] == ""
    assert lowered(head["headers"])["content-type"] == "application/json"
    assert lowered(head["headers"])["content-length"] == str(len(got["body"]))
    assert lowered(head["headers"])["x-content-type-options"] == "nosniff"


# --- 3. Request ids: only a safe one is echoed -------------------------------------------


@pytest.mark.parametrize(
    ("header", "label"),
    [
        (b'x-amzn-request-context: {"requestId": "evil\\r\\nSet-Cookie: a=1"}', "CR/LF"),
        (b'x-amzn-request-context: {"requestId": "' + b"a" * 60_000 + b'"}', "60 KB"),
        (b"x-amzn-request-context: " + b"[" * 8000, "deeply nested JSON"),
        (b'x-amzn-request-context: {"requestId": {"a": 1}}', "not a string"),
        (b"x-request-id: tab\there", "a tab"),
        (b"x-request-id: caf\xe9", "not ASCII"),
        (b"x-request-id: " + b"b" * 129, "too long"),
    ],
)
def test_an_unsafe_request_id_is_replaced_by_a_new_one(
    served: Served, header: bytes, label: str
) -> None:
    status, headers, _ = raw_request(served, get("/health", header))
    assert status == 200, label
    assert UUID.fullmatch(headers["x-request-id"]), label
    assert "set-cookie" not in headers


def test_a_safe_request_id_from_the_adapter_or_the_caller_is_echoed(served: Served) -> None:
    context = b'x-amzn-request-context: {"requestId": "adapter-req-7"}'
    assert raw_request(served, get("/health", context))[1]["x-request-id"] == "adapter-req-7"
    own = b"x-request-id: Trace.me:42_x-y"
    assert raw_request(served, get("/health", own))[1]["x-request-id"] == "Trace.me:42_x-y"


def test_a_host_header_that_is_no_host_gets_a_problem_not_a_500(served: Served) -> None:
    head = b"GET /nothing/here HTTP/1.1\r\nHost: [bad\r\nConnection: close\r\n\r\n"
    status, headers, body = raw_request(served, head)
    assert status == 404
    assert headers["content-type"] == PROBLEM_JSON
    assert json.loads(body)["instance"] == "/nothing/here"


# --- 4. HEAD wherever GET --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/exchanges",
        "/problems",
        "/openapi.json",
        "/",
        "/docs",
        "/static/vendor/swagger-ui-dist-5.35.0/swagger-ui.css",
        "/ticker/binance/BTC-USDT",
        "/ticker/nosuchexchange/BTC-USDT",
        "/nothing/here",
    ],
)
def test_head_is_answered_as_get_with_the_same_headers_and_no_body(
    client: httpx.Client, path: str
) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code != 405
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    for name in ("cache-control", "etag", "x-content-type-options"):
        assert head.headers.get(name) == got.headers.get(name), name
    if "x-cache" not in got.headers:  # a ticker's body carries its age: its length varies
        assert head.headers["content-length"] == str(len(got.content))


def test_head_of_a_stream_sends_its_headers_and_ends_its_work(
    served: Served, client: httpx.Client
) -> None:
    before = served.tasks()
    head = client.head(STREAM)  # the stream would last STREAM_MAX_SECONDS (840 s)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""
    deadline = time.monotonic() + 5
    while served.tasks() > before:
        assert time.monotonic() < deadline, "the stream's task outlived its HEAD request"
        time.sleep(0.02)


def test_a_405_lists_head_where_get_is_allowed(client: httpx.Client) -> None:
    refused = client.post("/health")
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == {"GET", "HEAD"}
    assert client.head("/mcp").status_code == 405, "HEAD is served only where GET is"


def test_a_preflight_for_head_is_allowed(client: httpx.Client) -> None:
    preflight = client.options(
        "/health", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "HEAD"}
    )
    assert preflight.status_code == 200
    assert "HEAD" in preflight.headers["access-control-allow-methods"]


# --- 5. nosniff on every answer ----------------------------------------------------------


def _mcp_initialize(client: httpx.Client) -> httpx.Response:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1.0"},
        },
    }
    return client.post(
        "/mcp", json=message, headers={"Accept": ACCEPT, "MCP-Protocol-Version": LEGACY}
    )


def _not_modified(client: httpx.Client) -> httpx.Response:
    etag = client.get("/ticker/binance/BTC-USDT").headers["etag"]
    return client.get("/ticker/binance/BTC-USDT", headers={"If-None-Match": etag})


def _stream_headers(client: httpx.Client) -> httpx.Response:
    with client.stream("GET", STREAM) as response:
        return response  # its headers; closing it ends the stream


ANSWERS: dict[str, Any] = {
    "a success": (lambda c: c.get("/health"), 200),
    "a problem echoing the path": (lambda c: c.get("/ticker/<script>/BTC-USDT"), 422),
    "a problem of an unknown exchange": (lambda c: c.get("/ticker/nosuch/BTC-USDT"), 404),
    "a 304": (_not_modified, 304),
    "a stream": (_stream_headers, 200),
    "the live page": (lambda c: c.get("/"), 200),
    "a vendored file": (
        lambda c: c.get("/static/vendor/swagger-ui-dist-5.35.0/swagger-ui.css"),
        200,
    ),
    "the docs": (lambda c: c.get("/docs"), 200),
    "the OpenAPI document": (lambda c: c.get("/openapi.json"), 200),
    "an MCP answer": (_mcp_initialize, 200),
    "a 405": (lambda c: c.delete("/health"), 405),
    "a CORS preflight": (
        lambda c: c.options(
            "/health", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        ),
        200,
    ),
    "a HEAD": (lambda c: c.head("/health"), 200),
}


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_every_kind_of_answer_says_nosniff_once(client: httpx.Client, kind: str) -> None:
    ask, status = ANSWERS[kind]
    response = ask(client)
    assert response.status_code == status
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
