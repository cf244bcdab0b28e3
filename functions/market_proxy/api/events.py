"""What a Lambda event must hold to be read as an API Gateway REST proxy request, and which
request ids may be echoed.

Mangum reads an event without checking it: a missing key, a value of the wrong type or bad
base64 raises inside the adapter, before the app could answer. :func:`malformed` checks
every part of the event that Mangum reads, with the types API Gateway sends, so that what it
passes cannot fail there. Pure: no I/O, and it never raises, whatever it is given.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

# What may be echoed as a request id (a header value) and logged as a correlation id: API
# Gateway's and Lambda's ids (UUIDs), a tracing id; never a line break or a 60 KB header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# RFC 9110's token, which a method is.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_PORT = re.compile(r"[0-9]{1,5}")
_SHAPE_DEPTH = 3
_SHAPE_KEYS = 40
_SHAPE_KEY_LENGTH = 64
_SHAPE_ITEMS = 3
_MAX_INSTANCE = 2048
Check = Callable[[Any], bool]


def request_id(value: object) -> str | None:
    """``value`` if it is an id safe to echo and log (1 to 128 of ``A-Za-z0-9._:-``)."""
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def event_request_id(event: object) -> str | None:
    """API Gateway's request id in ``event`` (``requestContext.requestId``), if it is safe."""
    if isinstance(event, Mapping):
        context = event.get("requestContext")
        if isinstance(context, Mapping):
            return request_id(context.get("requestId"))
    return None


def instance(event: object) -> str:
    """The path ``event`` asks for, for a problem's ``instance``; ``/`` if it has none."""
    path = event.get("path") if isinstance(event, Mapping) else None
    if isinstance(path, str) and _path(path) and len(path) <= _MAX_INSTANCE:
        return path
    return "/"


def malformed(event: object) -> str | None:
    """Why ``event`` cannot be an API Gateway REST proxy request (for a problem's detail:
    it names keys and types, never echoes values), or None when it can be one."""
    if not isinstance(event, dict):
        return f"the event is {_a(event)}, not an API Gateway REST proxy event (an object)"
    if "requestContext" not in event:
        if "detail-type" in event or "source" in event:
            return "the event is an EventBridge event (a schedule?), not an HTTP request"
        return "the event has no requestContext: it is not an API Gateway REST proxy event"
    return (
        _request_context(event["requestContext"])
        or _field(event, "httpMethod", _method)
        or _field(event, "path", _path)
        or _headers(event)
        or _field(event, "queryStringParameters", _optional(_of_texts), present=False)
        or _field(event, "multiValueQueryStringParameters", _optional(_of_lists), present=False)
        or _body(event)
    )


def shape(value: object, depth: int = _SHAPE_DEPTH) -> object:
    """``value``'s shape for a log line: the keys of objects, the type (and length) of
    everything else, never a value; bounded in depth and breadth."""
    if isinstance(value, dict):
        if depth <= 0:
            return f"dict({len(value)})"
        items = list(value.items())
        shaped: dict[str, object] = {
            _key(key): shape(item, depth - 1) for key, item in items[:_SHAPE_KEYS]
        }
        if len(items) > _SHAPE_KEYS:
            shaped["..."] = f"{len(items) - _SHAPE_KEYS} more keys"
        return shaped
    if isinstance(value, list):
        if depth <= 0 or not value:
            return f"list({len(value)})"
        listed = [shape(item, depth - 1) for item in value[:_SHAPE_ITEMS]]
        if len(value) > _SHAPE_ITEMS:
            listed.append(f"{len(value) - _SHAPE_ITEMS} more")
        return listed
    if isinstance(value, str):
        return f"str({len(value)})"
    return type(value).__name__


def _request_context(context: object) -> str | None:
    if not isinstance(context, dict):
        return f"requestContext is {_a(context)}, not an object"
    # Mangum reads requestContext.identity.sourceIp as the client's address.
    identity = context.get("identity", {})
    if not isinstance(identity, dict):
        return f"requestContext.identity is {_a(identity)}, not an object"
    source = identity.get("sourceIp")
    if source is not None and not _text(source):
        return f"requestContext.identity.sourceIp is {_a(source)}, not a string"
    return None


def _headers(event: dict[str, Any]) -> str | None:
    wrong = _field(event, "headers", _optional(_of_texts), present=False) or _field(
        event, "multiValueHeaders", _optional(_of_lists), present=False
    )
    if wrong:
        return wrong
    # As Mangum merges them, the lists winning; it parses the port of Host (or
    # X-Forwarded-Port) as an integer.
    merged = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        merged[name.lower()] = ", ".join(values)
    host = merged.get("host", "")
    if ":" in host:
        port = host.partition(":")[2]
        if ":" in port or not _PORT.fullmatch(port):
            return "the Host header has a port that is not a number"
    elif "x-forwarded-port" in merged and not _PORT.fullmatch(merged["x-forwarded-port"]):
        return "the X-Forwarded-Port header is not a number"
    return None


def _body(event: dict[str, Any]) -> str | None:
    encoded = event.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        return f"isBase64Encoded is {_a(encoded)}, not a boolean"
    body = event.get("body")
    if body is None:
        return None
    if not _text(body):
        return f"body is {_a(body)}, not a string"
    if encoded:
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "the body is marked isBase64Encoded but is not base64"
    return None


def _field(event: dict[str, Any], name: str, valid: Check, *, present: bool = True) -> str | None:
    """Whether ``event[name]`` is valid; ``present``: whether it must be there."""
    if name not in event:
        return f"the event has no {name}" if present else None
    value = event[name]
    if valid(value):
        return None
    return f"{name} is {_a(value)}, not what API Gateway sends"


def _optional(valid: Check) -> Check:
    return lambda value: value is None or valid(value)


def _method(value: object) -> bool:
    return isinstance(value, str) and _METHOD.fullmatch(value) is not None


def _path(value: object) -> bool:
    return isinstance(value, str) and _text(value) and value.startswith("/")


def _of_texts(value: object) -> bool:
    """A map of strings to strings (headers, query parameters)."""
    return isinstance(value, dict) and all(_text(k) and _text(v) for k, v in value.items())


def _of_lists(value: object) -> bool:
    """A map of strings to lists of strings (their multi-value forms)."""
    return isinstance(value, dict) and all(
        _text(k) and isinstance(v, list) and all(_text(item) for item in v)
        for k, v in value.items()
    )


def _text(value: object) -> bool:
    """A string that can be encoded as UTF-8 (JSON can carry lone surrogates; they cannot
    be sent on)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _a(value: object) -> str:
    """A value's kind, for a reason: never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string" if _text(value) else "a string that is not UTF-8"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _key(key: object) -> str:
    if isinstance(key, str):
        return key[:_SHAPE_KEY_LENGTH]
    return f"<{type(key).__name__}>"
