"""A loopback proxy in front of DynamoDB Local that fails chosen operations the way AWS does.

Requests are forwarded untouched, except those of an operation given a fault: they are
answered with DynamoDB's own error wire format (JSON protocol 1.0: HTTP 400, or 500 for a
server error; ``__type`` in the body and ``x-amzn-ErrorType`` in the headers; a CRC32 of the
body, which botocore checks for DynamoDB), held past the client's read timeout, or passed on
with a CRC32 that does not match. botocore's own retries and error parsing run exactly as
they would against AWS. The proxy counts requests per operation and open connections.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class AwsError:
    status: int
    type: str  # the shape's full name, as DynamoDB puts it in ``__type``
    message: str

    @property
    def code(self) -> str:
        return self.type.rsplit("#", 1)[-1]


ERRORS = {
    error.code: error
    for error in (
        AwsError(
            400,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. "
            "Consider increasing your provisioning level with the UpdateTable API.",
        ),
        AwsError(
            400,
            "com.amazon.coral.availability#ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        AwsError(
            400,
            "com.amazon.coral.service#AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/market-data-proxy-ApiFunctionRole/"
            "market-data-proxy-ApiFunction is not authorized to perform: dynamodb:{operation} "
            "on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{table} because no "
            "identity-based policy allows the dynamodb:{operation} action",
        ),
        AwsError(
            400,
            "com.amazon.coral.validate#ValidationException",
            "Item size has exceeded the maximum allowed size",
        ),
        AwsError(
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        ),
    )
}
STALL = "stall"  # not an answer: the request is held until the client gives up
BAD_CRC = "bad_crc"  # the table's answer, its CRC32 header off by one (damaged in transit)
FAULTS = (*ERRORS, STALL, BAD_CRC)


@dataclass
class _Fault:
    operation: str | None  # None: every operation
    kind: str  # one of FAULTS


@contextmanager
def dynamodb_fault_proxy(upstream: str, *, stall_s: float = 5.0) -> Iterator[DynamoDBFaultProxy]:
    """A fault proxy in front of the DynamoDB at ``upstream``, serving until the block ends."""
    proxy = DynamoDBFaultProxy(upstream, stall_s=stall_s)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class DynamoDBFaultProxy:
    def __init__(self, upstream: str, *, stall_s: float = 5.0) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self._stall_s = stall_s
        self._faults: list[_Fault] = []
        self._seen: Counter[str] = Counter()
        self._open = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # (a short poll: shutdown() waits for one, and stopping should not cost half a second)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="dynamodb-faults",
            daemon=True,
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, kind: str, operation: str | None = None) -> None:
        """Answer ``operation`` (e.g. ``PutItem``; every operation if None) with ``kind``."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append(_Fault(operation, kind))

    def calls(self, operation: str | None = None) -> int:
        """Requests received (answered or failed), of one operation or of all."""
        with self._lock:
            return self._seen[operation] if operation else sum(self._seen.values())

    def operations(self) -> list[str]:
        with self._lock:
            return sorted(self._seen)

    def open_connections(self) -> int:
        """Client connections open to the proxy now."""
        with self._lock:
            return self._open

    # -- serving --------------------------------------------------------------------------

    def _fault_for(self, operation: str) -> str | None:
        with self._lock:
            self._seen[operation] += 1
            for fault in self._faults:
                if fault.operation in (None, operation):
                    return fault.kind
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._open += 1

            def finish(self) -> None:
                with proxy._lock:
                    proxy._open -= 1
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                fault = proxy._fault_for(operation)
                if fault == STALL:
                    time.sleep(proxy._stall_s)
                    self.close_connection = True
                    return
                if fault in ERRORS:
                    self._answer_error(ERRORS[fault], operation, body)
                else:
                    self._forward(body, damaged=fault == BAD_CRC)

            def _answer_error(self, error: AwsError, operation: str, request: bytes) -> None:
                table = json.loads(request or b"{}").get("TableName", "market-data-cache")
                message = error.message.format(operation=operation, table=table)
                payload = json.dumps({"__type": error.type, "message": message}).encode()
                self._send(
                    error.status,
                    [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("x-amzn-RequestId", uuid.uuid4().hex.upper()[:52]),
                        ("x-amzn-ErrorType", f"{error.code}:"),
                        ("x-amz-crc32", str(zlib.crc32(payload))),
                    ],
                    payload,
                )

            def _forward(self, body: bytes, *, damaged: bool = False) -> None:
                connection = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    connection.request("POST", self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                    passed = [
                        (k, v)
                        for k, v in answer.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")
                    ]
                    if damaged:
                        passed = [
                            (k, str((zlib.crc32(payload) + 1) & 0xFFFFFFFF))
                            if k.lower() == "x-amz-crc32"
                            else (k, v)
                            for k, v in passed
                        ]
                    self._send(answer.status, passed, payload)
                finally:
                    connection.close()

            def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads what it needs from calls()

        return Handler
