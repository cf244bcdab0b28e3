"""MCP requests as API Gateway (REST) delivers them to the Lambda handler, and their answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.apigw import rest_event

LEGACY = "2025-11-25"  # the handshake era's latest: what today's clients speak
MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"  # what the SDKs' clients send
CLIENT = {"name": "tests", "version": "1.0"}


def mcp_event(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    request_id: int | str | None = 1,
    version: str | None = LEGACY,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``POST /mcp`` carrying one JSON-RPC message (a notification when ``request_id`` is
    None). At 2026-07-28 the request carries its envelope in ``_meta``, as that era wants."""
    sent = {"Content-Type": "application/json", "Accept": ACCEPT}
    if version is not None:
        sent["MCP-Protocol-Version"] = version
    if version == MODERN:
        sent["Mcp-Method"] = method
        if method == "tools/call" and params and isinstance(params.get("name"), str):
            sent["Mcp-Name"] = params["name"]
        params = {**(params or {}), "_meta": envelope(version)}
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if request_id is not None:
        message["id"] = request_id
    event = rest_event("/mcp", method="POST", headers={**sent, **(headers or {})})
    event["body"] = json.dumps(message)
    return event


def envelope(version: str) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": CLIENT,
    }


def tool_call(
    name: str, arguments: Any, *, version: str | None = LEGACY, request_id: int = 1
) -> dict[str, Any]:
    return mcp_event(
        "tools/call", {"name": name, "arguments": arguments}, version=version, request_id=request_id
    )


@dataclass(frozen=True)
class Reply:
    """The handler's answer to one MCP request."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: Any  # the JSON-RPC response, or None (202)

    @property
    def result(self) -> dict[str, Any]:
        assert "result" in self.body, self.body
        found: dict[str, Any] = self.body["result"]
        return found

    @property
    def structured(self) -> dict[str, Any]:
        found: dict[str, Any] = self.result["structuredContent"]
        return found

    @property
    def error(self) -> dict[str, Any]:
        assert "error" in self.body, self.body
        found: dict[str, Any] = self.body["error"]
        return found


def reply(response: dict[str, Any]) -> Reply:
    assert response["isBase64Encoded"] is False
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    text = response.get("body") or ""
    body = json.loads(text) if headers.get("content-type", "").startswith("application/") else text
    return Reply(response["statusCode"], headers, body if text else None)
