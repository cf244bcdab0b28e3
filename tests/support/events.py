"""Event shapes AWS sends that are not API Gateway's, and events no one should send."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.support.apigw import rest_event


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge schedule rule delivers to its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [
            "arn:aws:events:us-east-1:123456789012:rule/market-data-proxy-WarmerFunctionWarm-1A2B3C4D5E6F"
        ],
        "detail": {},
    }


DROP: Any = object()  # a key's value in rest_event_with: remove the key


def rest_event_with(**changes: Any) -> dict[str, Any]:
    """API Gateway's REST event for ``GET /health`` with top-level keys replaced; a value
    of :data:`DROP` removes the key."""
    event = rest_event("/health")
    for key, value in changes.items():
        if value is DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def _with_header(name: str, value: Any) -> dict[str, Any]:
    """A REST event whose header ``name`` is ``value``, in both of its header maps."""
    event = rest_event("/health")
    event["headers"][name] = value
    event["multiValueHeaders"][name] = [value]
    return event


def _with_context(**changes: Any) -> dict[str, Any]:
    event = rest_event("/health")
    event["requestContext"].update(changes)
    return event


def malformed_events() -> dict[str, Any]:
    """Events that cannot be an API Gateway REST proxy request, by what is wrong with them:
    none of them is anything API Gateway sends, but a test console, a misconfigured trigger
    or a hand-written invocation can send any of them."""
    return {
        "an empty object": {},
        "null": None,
        "a list": [rest_event("/health")],
        "a string": "GET /health",
        "a number": 42,
        "no requestContext": rest_event_with(requestContext=DROP),
        "a requestContext that is a string": rest_event_with(requestContext="abc"),
        "a null identity": _with_context(identity=None),
        "no httpMethod": rest_event_with(httpMethod=DROP),
        "an httpMethod that is not a token": rest_event_with(httpMethod="GET /health"),
        "a path that is a number": rest_event_with(path=123),
        "a path that is not absolute": rest_event_with(path="health"),
        "no path": rest_event_with(path=DROP),
        "bad base64 with isBase64Encoded": rest_event_with(
            httpMethod="POST", body="not base64!", isBase64Encoded=True
        ),
        "isBase64Encoded as a string": rest_event_with(body="e30=", isBase64Encoded="true"),
        "a body that is an object": rest_event_with(httpMethod="POST", body={"a": 1}),
        "a header value that is a number": _with_header("Accept", 5),
        "a header value that is null": _with_header("X-Request-Id", None),
        "multiValueHeaders that is a list": rest_event_with(multiValueHeaders=["Accept"]),
        "multiValueHeaders with strings for lists": rest_event_with(
            multiValueHeaders={"Accept": "application/json"}
        ),
        "queryStringParameters that is a string": rest_event_with(
            queryStringParameters="deep=true"
        ),
        "multiValueQueryStringParameters with strings for lists": rest_event_with(
            multiValueQueryStringParameters={"deep": "true"}
        ),
        "a Host whose port is not a number": _with_header("Host", "example.com:https"),
        "an X-Forwarded-Port that is not a number": _with_header("X-Forwarded-Port", "443a"),
        "a header that is not UTF-8": _with_header("Accept", "\udc80"),
        "an HTTP API (payload 2.0) event": {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/health",
            "rawQueryString": "",
            "headers": {"host": "example.com"},
            "requestContext": {"http": {"method": "GET", "path": "/health"}},
        },
        "a scheduled EventBridge event": scheduled_event(),
    }
