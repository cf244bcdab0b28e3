"""One HTTP request as the SDK's kernel sees it, and JSON-RPC answers as they are written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, ErrorData
from pydantic import ValidationError
from starlette.responses import Response

from market_proxy.observability import logger


@dataclass
class OneRequest:
    """The SDK's ``DispatchContext`` protocol for one HTTP request: no back-channel (the
    server never asks the client anything), and progress goes nowhere (JSON responses)."""

    transport: TransportContext
    request_id: Any
    message_metadata: ServerMessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        return None

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        return None


def invalid_params(what: str, exc: ValidationError) -> MCPError:
    """-32602 naming each field that is wrong (never echoing what was sent)."""
    found = [
        {
            "field": ".".join(str(p) for p in e["loc"]) or what,
            "message": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    fields = ", ".join(dict.fromkeys(e["field"] for e in found))
    return MCPError(INVALID_PARAMS, f"Invalid arguments for {what}: {fields}", {"errors": found})


def decoded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # integers past 64 bits are JSON too
        return json.loads(body)


def internal(method: str) -> ErrorData:
    logger.exception("MCP request failed", extra={"method": method})
    return ErrorData(code=INTERNAL_ERROR, message="Internal server error")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(
    request_id: Any, code: int, message: str, data: Any = None, status: int = 200
) -> Response:
    error = {"code": code, "message": message, **({"data": data} if data is not None else {})}
    return json_response({"jsonrpc": "2.0", "id": request_id, "error": error}, status)


def plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
