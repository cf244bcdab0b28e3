"""How direct reads (``market_proxy.cache.direct``) name, retry and refuse what a table or
something in front of it answers, against a loopback server playing those answers: every
failure is a ``DirectError`` named as botocore names it, retried exactly when botocore's
standard mode would retry it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.credentials import Credentials

from infra.local.dynamodb import free_port
from market_proxy.cache.direct import DirectError, DirectReads

GET = {"TableName": "cache-test", "Key": {"pk": {"S": "ticker#binance#BTC/USDT"}}}
JSON_1_0 = {"Content-Type": "application/x-amz-json-1.0"}


@dataclass
class Canned:
    """What the table answers, the same to every request, and how many it received."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_1_0))
    body: bytes = b"{}"
    received: int = 0


@pytest.fixture
def table() -> Iterator[tuple[Canned, str]]:
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            canned.received += 1
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield canned, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def reads(endpoint: str, waits: list[float]) -> DirectReads:
    return DirectReads(
        endpoint,
        "us-east-1",
        Credentials("key", "secret"),
        timeout_s=2.0,
        sleep=waits.append,
        jitter=lambda: 1.0,  # the longest wait each back-off allows
    )


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "retried", "wait_s"),
    [
        # A load balancer's HTML page: botocore names it by its status, and retries a 502.
        (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>", "502", True, 0.025),
        (
            500,
            JSON_1_0,
            b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}',
            "InternalServerError",
            True,
            0.025,
        ),
        (
            400,
            JSON_1_0,
            b'{"__type":"com.amazon.coral.availability#ThrottlingException","message":"slow"}',
            "ThrottlingException",
            True,
            1.0,
        ),
        (
            400,
            JSON_1_0,
            b'{"__type":"com.amazonaws.dynamodb.v20120810#TransactionInProgressException"}',
            "TransactionInProgressException",
            True,
            1.0,
        ),
        # A code with a suffix after a colon, as some services send: botocore drops it.
        (
            400,
            JSON_1_0,
            b'{"__type":"com.amazon.coral.validate#ValidationException:http://x","Message":"no"}',
            "ValidationException",
            False,
            None,
        ),
        (
            400,
            JSON_1_0,
            b'{"__type":"com.amazon.coral.service#AccessDeniedException","message":"denied"}',
            "AccessDeniedException",
            False,
            None,
        ),
        # The code in a header only, and a body that is not JSON.
        (
            400,
            {"x-amzn-ErrorType": "ResourceNotFoundException:"},
            b"not json",
            "ResourceNotFoundException",
            False,
            None,
        ),
        # 200s that cannot be read: not an object, or a checksum that is not a number.
        (200, JSON_1_0, b"null", "ResponseParserError", True, 0.025),
        (200, JSON_1_0, b"[1, 2]", "ResponseParserError", True, 0.025),
        (200, {**JSON_1_0, "x-amz-crc32": "abc"}, b"{}", "CRC32Mismatch", True, 0.025),
    ],
)
def test_each_failure_is_named_as_botocore_names_it_and_retried_as_it_retries(
    table: tuple[Canned, str],
    status: int,
    headers: dict[str, str],
    body: bytes,
    code: str,
    retried: bool,
    wait_s: float | None,
) -> None:
    # Given a table that gives this answer to every request,
    canned, endpoint = table
    canned.status, canned.headers, canned.body = status, headers, body
    waits: list[float] = []

    # when a read is made,
    with pytest.raises(DirectError) as failed:
        reads(endpoint, waits).call("get_item", GET)

    # then it fails with botocore's name for the failure, after botocore's attempts and
    # back-off (throttling waits up to 1 s, anything else up to 25 ms).
    assert failed.value.code == code
    assert canned.received == (2 if retried else 1)
    assert waits == ([wait_s] if retried else [])


def test_the_tables_message_is_kept_for_the_logs(table: tuple[Canned, str]) -> None:
    canned, endpoint = table
    canned.status = 400
    canned.body = b'{"__type":"x#AccessDeniedException","message":"not authorized on table t"}'
    with pytest.raises(DirectError, match="AccessDeniedException: not authorized on table t"):
        reads(endpoint, []).call("get_item", GET)


def test_a_request_that_cannot_be_written_fails_before_anything_is_sent(
    table: tuple[Canned, str],
) -> None:
    canned, endpoint = table
    with pytest.raises(DirectError) as failed:
        reads(endpoint, []).call("get_item", {**GET, "Key": {"pk": {"SS": {"a", "b"}}}})
    assert failed.value.code == "ParamValidationError"
    assert canned.received == 0


def test_an_endpoint_nobody_listens_on_fails_as_botocore_says_it() -> None:
    waits: list[float] = []
    dead = reads(f"http://127.0.0.1:{free_port()}", waits)
    with pytest.raises(DirectError) as failed:
        dead.call("get_item", GET)
    assert failed.value.code == "EndpointConnectionError"
    assert waits == [0.025], "retried once, as botocore retries a connection error"


def test_closed_connections_are_opened_anew_by_the_next_read(table: tuple[Canned, str]) -> None:
    # Given reads that hold a kept-alive connection,
    canned, endpoint = table
    canned.body = b'{"Item":{"pk":{"S":"k"},"blob":{"B":"AAE="}}}'
    direct = reads(endpoint, [])
    direct.call("get_item", GET)

    # when every connection is closed (before a snapshot) and another read is made,
    direct.close()
    answer = direct.call("get_item", GET)

    # then it is answered on a new connection, binary values decoded as boto3 decodes them.
    assert answer == {"Item": {"pk": {"S": "k"}, "blob": {"B": b"\x00\x01"}}}
    assert canned.received == 2
