"""DynamoDB's read operations spoken directly on the wire, without boto3's request pipeline.

An L2 hit is one ``GetItem``. Through boto3 the Python around that round trip (event hooks,
parameter validation, urllib3, response parsing by the service model) costs more than
DynamoDB's own answer on a fast network, and it is paid on every cached answer. This module
sends the same request (botocore's SigV4 signer signs it, with the same credentials object
the boto3 client uses) over kept-alive connections of the standard library's ``http.client``
and reads DynamoDB's JSON with orjson. Only reads go this way; every write goes through
boto3.

Failures follow botocore's standard retry mode, so callers see the same outcomes either
way: two attempts in all; connection errors, timeouts, 5xx, throttling and a body whose
CRC32 does not match are retried, after a jittered wait of up to 25 ms (up to 1 s after
throttling); any other error is final. A kept-alive connection the server has closed is
replaced at once, without counting as an attempt. Errors carry botocore's names for them
(``EndpointConnectionError``, ``ReadTimeoutError``, DynamoDB's own error code), so logs and
alarms read the same whichever path made the call.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import random
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import botocore
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import get_cert_path

from market_proxy.observability import tracer

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
USER_AGENT = f"market-data-proxy/direct-reads botocore/{botocore.__version__}"
# boto3's method names for the operations spoken here, and DynamoDB's own.
OPERATIONS = {"get_item": "GetItem", "batch_get_item": "BatchGetItem"}
MAX_ATTEMPTS = 2
THROTTLED_BACKOFF_S = 1.0
TRANSIENT_BACKOFF_S = 0.025  # botocore's base for DynamoDB's non-throttling errors
# botocore's standard retry mode (botocore/retries/standard.py) retries these.
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
# The connection broke before any answer came: on a kept-alive connection, the server most
# likely closed it while it sat idle.
_CLOSED_UNDER_US = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class DirectError(Exception):
    """A read failed: ``code`` is what botocore would have called it."""

    def __init__(
        self, code: str, *, status: int | None = None, message: str = "", retryable: bool = False
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.status = status
        self.retryable = retryable
        self.throttled = code in THROTTLED_CODES or status == 429


class DirectReads:
    """``GetItem`` and ``BatchGetItem`` against one DynamoDB endpoint.

    Thread-safe: each call takes a connection of its own from a pool of idle ones (a worker
    thread per call on the stream function, the loop's thread on the API function).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Credentials,
        *,
        timeout_s: float,
        ca_bundle: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP endpoint: {endpoint_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self._url = f"{parts.scheme}://{parts.netloc}{self._path}"
        self._region = region
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._jitter = jitter
        self._tls = (
            ssl.create_default_context(cafile=ca_bundle or get_cert_path(True))
            if self._https
            else None
        )
        self._idle: collections.deque[http.client.HTTPConnection] = collections.deque()

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` (a boto3 method name from :data:`OPERATIONS`) with boto3's
        arguments; the answer is what boto3 would return (binary values as ``bytes``), less
        its ``ResponseMetadata``. Raises :class:`DirectError`, or botocore's own error when
        the credentials cannot be had."""
        target = OPERATIONS[operation]
        try:
            body = orjson.dumps(request, default=_base64)
        except TypeError as exc:
            raise DirectError("ParamValidationError", message=str(exc)) from None
        with _traced(target, self._region, request) as trace:
            attempt = 1
            while True:
                try:
                    answer = self._attempt(target, body, trace)
                except DirectError as exc:
                    if not exc.retryable or attempt >= MAX_ATTEMPTS:
                        raise
                    scale = THROTTLED_BACKOFF_S if exc.throttled else TRANSIENT_BACKOFF_S
                    self._sleep(self._jitter() * scale)
                    attempt += 1
                    continue
                return _decoded_response(answer)

    def close(self) -> None:
        """Close every idle connection (before a SnapStart snapshot, where a socket would be
        dead on restore). The next call opens new ones."""
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return
            connection.close()

    # -- one attempt -------------------------------------------------------------------

    def _attempt(self, target: str, body: bytes, trace: _Trace) -> dict[str, Any]:
        # Signed before a socket is taken: credentials that cannot be had leave none open.
        headers = self._signed_headers(target, body, trace)
        connection, reused = self._connection()
        try:
            try:
                status, answer_headers, raw = self._round_trip(connection, headers, body)
            except _CLOSED_UNDER_US:
                if not reused:
                    raise
                # Closed while idle: a new connection, and this was no attempt.
                connection.close()
                connection = self._new_connection()
                status, answer_headers, raw = self._round_trip(connection, headers, body)
            trace.answered(status, answer_headers.get("x-amzn-requestid"))
            _verify_crc32(answer_headers, raw)
        except DirectError:
            connection.close()
            raise
        except TimeoutError:
            connection.close()
            raise DirectError("ReadTimeoutError", retryable=True) from None
        except (OSError, http.client.HTTPException):
            connection.close()
            raise DirectError("ConnectionClosedError", retryable=True) from None
        except BaseException:
            connection.close()
            raise
        self._release(connection, answer_headers)
        if status != 200:
            raise _service_error(status, answer_headers, raw)
        return _parsed(raw, status)

    def _round_trip(
        self, connection: http.client.HTTPConnection, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if connection.sock is None:
            # Apart from the request, so that failing to connect is told from failing to read.
            try:
                connection.connect()
            except TimeoutError:
                raise DirectError("ConnectTimeoutError", retryable=True) from None
            except ssl.SSLError as exc:
                raise DirectError("SSLError", message=str(exc)) from None
            except OSError:
                raise DirectError("EndpointConnectionError", retryable=True) from None
        connection.request("POST", self._path, body, headers)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer_headers, raw

    def _signed_headers(self, target: str, body: bytes, trace: _Trace) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-Amz-Target": TARGET_PREFIX + target,
                "User-Agent": USER_AGENT,
            },
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "dynamodb", self._region).add_auth(
            request
        )
        headers = dict(request.headers.items())
        trace.propagate(headers)  # after signing: the trace header is never signed
        return headers

    # -- the pool ----------------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        try:
            return self._idle.pop(), True
        except IndexError:
            return self._new_connection(), False

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)

    def _release(self, connection: http.client.HTTPConnection, headers: dict[str, str]) -> None:
        if headers.get("connection", "").lower() == "close":
            connection.close()
        else:
            self._idle.append(connection)


def _verify_crc32(headers: dict[str, str], raw: bytes) -> None:
    """DynamoDB sends the CRC32 of every body; botocore asks again when it does not match."""
    expected = headers.get("x-amz-crc32")
    if expected is None:
        return
    if not expected.isdigit() or int(expected) != zlib.crc32(raw) & 0xFFFFFFFF:
        raise DirectError("CRC32Mismatch", retryable=True)


def _parsed(raw: bytes, status: int) -> dict[str, Any]:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise DirectError("ResponseParserError", status=status, retryable=True)
    return answer


def _service_error(status: int, headers: dict[str, str], raw: bytes) -> DirectError:
    """The error as botocore's JSON parser names it: ``__type`` without its namespace
    (``…#Code``) or suffix (``Code:…``), else the HTTP status (an HTML page from a load
    balancer)."""
    document: Any = None
    with contextlib.suppress(orjson.JSONDecodeError):
        document = orjson.loads(raw)
    if not isinstance(document, dict):
        document = {}
    code = str(document.get("__type") or headers.get("x-amzn-errortype") or status)
    code = code.split(":", 1)[0].rsplit("#", 1)[-1] or str(status)
    message = str(document.get("message") or document.get("Message") or "")
    retryable = (
        status in TRANSIENT_STATUS
        or status == 429
        or code in TRANSIENT_CODES
        or code in THROTTLED_CODES
    )
    return DirectError(code, status=status, message=message, retryable=retryable)


def _base64(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} cannot be sent to DynamoDB")


def _decoded_response(answer: dict[str, Any]) -> dict[str, Any]:
    """Binary attribute values as ``bytes``, as boto3 returns them; the rest as sent."""
    if "Item" in answer:
        answer["Item"] = _decoded_item(answer["Item"])
    responses = answer.get("Responses")
    if responses:
        answer["Responses"] = {
            table: [_decoded_item(item) for item in items] for table, items in responses.items()
        }
    unprocessed = answer.get("UnprocessedKeys")
    if unprocessed:
        answer["UnprocessedKeys"] = {
            table: {**wanted, "Keys": [_decoded_item(key) for key in wanted.get("Keys", [])]}
            for table, wanted in unprocessed.items()
        }
    return answer


def _decoded_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _decoded_value(value) for name, value in item.items()}


def _decoded_value(value: dict[str, Any]) -> dict[str, Any]:
    if "S" in value or "N" in value:
        return value
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(member) for member in value["BS"]]}
    if "M" in value:
        return {"M": _decoded_item(value["M"])}
    if "L" in value:
        return {"L": [_decoded_value(member) for member in value["L"]]}
    return value


# -- X-Ray ---------------------------------------------------------------------------------


class _Trace:
    """What boto3's X-Ray patch records of a call, for a call that does not go through it."""

    def __init__(self, subsegment: Any = None) -> None:
        self._subsegment = subsegment

    def propagate(self, headers: dict[str, str]) -> None:
        if self._subsegment is not None:
            from aws_xray_sdk.ext.util import inject_trace_header  # type: ignore[import-untyped]

            inject_trace_header(headers, self._subsegment)

    def answered(self, status: int, request_id: str | None) -> None:
        if self._subsegment is not None:
            self._subsegment.put_http_meta("status", status)
            if request_id:
                self._subsegment.aws["request_id"] = request_id


@contextmanager
def _traced(target: str, region: str, request: dict[str, Any]) -> Iterator[_Trace]:
    """A subsegment named and filled as the X-Ray SDK's botocore patch names and fills one
    (``dynamodb``, namespace ``aws``, the operation and its table), where tracing is on."""
    if tracer.disabled:
        yield _Trace()
        return
    recorder: Any = tracer.provider
    with recorder.in_subsegment(name="dynamodb", namespace="aws") as subsegment:
        aws: dict[str, Any] = {"operation": target, "region": region}
        if "TableName" in request:
            aws["table_name"] = request["TableName"]
        if "ConsistentRead" in request:
            aws["consistent_read"] = request["ConsistentRead"]
        if "RequestItems" in request:
            aws["table_names"] = list(request["RequestItems"])
        subsegment.set_aws(aws)
        yield _Trace(subsegment)
