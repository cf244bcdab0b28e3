"""The ``/mcp`` endpoint: one JSON-RPC request in, one JSON response out, on the SDK's pieces.

Both protocol eras are served: the handshake era (``initialize``, then requests carrying
``MCP-Protocol-Version``; born-ready without a session, as the SDK's stateless transport
does) and the 2026-07-28 era (each request carries its envelope, checked by the SDK's own
ladder). ``tools/call`` is served here, as the SDK's kernel would (the same surface check
and result sieve), and ``tools/list`` once per protocol version; everything else goes
through the kernel's single-request driver, :func:`mcp.server.runner.serve_one`.

Why not the SDK's session manager: its stateless path builds a transport, streams, a task
and a dispatcher for every request (about four times a REST answer's cost), and needs a
task group running in every container. This endpoint needs nothing started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.runner import serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_PROTOCOL_VERSION_HEADER,
    InboundLadderRejection,
    classify_inbound_request,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    SERVER_INFO_META_KEY,
    CallToolRequestParams,
    CallToolResult,
    JSONRPCRequest,
    ListToolsResult,
    PaginatedRequestParams,
)
from mcp_types import Tool as ToolInfo
from mcp_types.methods import serialize_server_result, validate_client_request
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from market_proxy import errors
from market_proxy.mcp_server.results import advertised_schema, problem
from market_proxy.mcp_server.security import transport_security
from market_proxy.mcp_server.tools import market_tools
from market_proxy.mcp_server.wire import (
    OneRequest,
    decoded,
    error_response,
    internal,
    invalid_params,
    json_response,
    plain,
)
from market_proxy.observability import logger
from market_proxy.service import MarketData

NAME = "market-data-proxy"
INSTRUCTIONS = (
    "Cryptocurrency market data (tickers, order books, trades, funding, OHLCV candles) from "
    "the exchanges list_exchanges names, answered from a cache: every result says how fresh "
    "it is (freshness). A failure is an error result carrying the problem: its code, whether "
    "retrying may help (retryable) and when (retry_after, seconds)."
)
MAX_REQUEST_BYTES = 1 << 20
CRASHED = "The proxy failed unexpectedly; the failure has been logged."  # REST's words


class Endpoint:
    """The ASGI app of ``/mcp`` over ``service`` (POST only: the route refuses others)."""

    def __init__(self, service: MarketData, *, lanes: bool = True) -> None:
        self.service = service
        self.lanes = lanes  # False: every method through the kernel (tests compare the two)
        self.tools: dict[str, Tool] = {tool.name: tool for tool in market_tools(service)}
        self.server: Server[Any] = Server(
            NAME,
            version="1.0",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        # No OpenTelemetry spans (the SDK's default middleware): tracing here is X-Ray's.
        self.server.middleware.clear()
        self.security = TransportSecurityMiddleware(transport_security(service.settings))
        self._context = Context()  # what Tool.run asks for; these tools never read it
        self._listed: dict[str, bytes] = {}  # tools/list's result, encoded, per version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refused = await self.security.validate_request(request, is_post=True)
        if refused is not None:
            return await refused(scope, receive, send)
        if not check_accept_headers(request)[0]:
            return await plain(406, "Not Acceptable: accept application/json")(scope, receive, send)
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return await plain(413, "Request body too large")(scope, receive, send)
        response = await self._answer(body, request)
        return await response(scope, receive, send)

    async def _answer(self, body: bytes, request: Request) -> Response:
        try:
            message_body = decoded(body)
        except (ValueError, RecursionError):
            return error_response(None, PARSE_ERROR, "Parse error", status=400)
        if isinstance(message_body, dict) and "id" not in message_body:
            return Response(status_code=202)  # a notification: nothing to answer statelessly
        try:
            message = JSONRPCRequest.model_validate(message_body)
        except ValidationError:
            return error_response(
                None, INVALID_REQUEST, "Body must be one JSON-RPC request", status=400
            )
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
        modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
        if modern:
            verdict = classify_inbound_request(message_body, headers=dict(request.headers))
            if isinstance(verdict, InboundLadderRejection):
                status = ERROR_CODE_HTTP_STATUS.get(verdict.code, 400)
                return error_response(
                    message.id, verdict.code, verdict.message, verdict.data, status
                )
            connection = Connection.from_envelope(
                verdict.protocol_version, verdict.client_info, verdict.client_capabilities
            )
        else:
            connection = Connection.from_envelope(version or DEFAULT_NEGOTIATED_VERSION, None, None)
        try:
            result = await self._dispatch(message, connection, request)
        except Exception as exc:  # the SDK's ladder: MCPError as is, ValidationError -32602
            error = handler_exception_to_error_data(exc) or internal(message.method)
            status = ERROR_CODE_HTTP_STATUS.get(error.code, 500) if modern else 200
            return error_response(message.id, error.code, error.message, error.data, status)
        return json_response({"jsonrpc": "2.0", "id": message.id, "result": result})

    async def _dispatch(
        self, message: JSONRPCRequest, connection: Connection, request: Request
    ) -> Any:
        method, params, version = message.method, message.params, connection.protocol_version
        if not self.lanes:
            return await self._serve_one(message, connection, request)
        if method == "tools/call":
            return await self._tools_call(params, version)
        if method == "tools/list" and not (params or {}).get("cursor"):
            listed = self._listed.get(version)
            if listed is None:
                listed = orjson.dumps(await self._serve_one(message, connection, request))
                self._listed[version] = listed
            return orjson.Fragment(listed)
        return await self._serve_one(message, connection, request)

    async def _serve_one(
        self, message: JSONRPCRequest, connection: Connection, request: Request
    ) -> dict[str, Any]:
        context = OneRequest(
            transport=TransportContext(
                kind="streamable-http", can_send_request=False, headers=request.headers
            ),
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request),
        )
        return await serve_one(
            self.server,
            context,
            message.method,
            message.params,
            connection=connection,
            lifespan_state={},
        )

    async def _tools_call(self, params: Mapping[str, Any] | None, version: str) -> dict[str, Any]:
        """``tools/call`` as the kernel serves it (``ServerRunner._on_request``): the
        version's surface check, the handler, the version's result sieve and, in the
        2026-07-28 era, ``resultType`` and the server's stamp. Tests hold the two equal."""
        try:
            validate_client_request("tools/call", version, params)
        except ValidationError as exc:
            raise invalid_params("tools/call", exc) from None
        assert params is not None  # the surface check requires name
        result = await self.call(params["name"], params.get("arguments") or {})
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        sieved = serialize_server_result("tools/call", version, dumped)
        if version in MODERN_PROTOCOL_VERSIONS:
            sieved.setdefault("resultType", "complete")
            meta = sieved.get("_meta") or {}
            sieved["_meta"] = {**meta, SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return sieved

    async def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """Run one tool. Bad arguments (and an unknown tool) are invalid params naming the
        fields; a service problem is the tool's own error result; a crash is the problem
        REST answers for one (``internal_error``, retryable), saying nothing of it (logged,
        as the SDK's ``MCPServer`` does)."""
        tool = self.tools.get(name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}", {"tool": name})
        try:
            result = await tool.run(arguments, self._context, convert_result=True)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
                raise invalid_params(name, cause) from None
            logger.exception("MCP tool failed", extra={"tool": name})
            return problem(errors.InternalError(CRASHED))
        assert isinstance(result, CallToolResult)
        return result

    async def _call_tool(self, _ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        return await self.call(params.name, params.arguments or {})

    async def _list_tools(
        self, _ctx: Any, _params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(
            tools=[
                ToolInfo(
                    name=tool.name,
                    title=tool.title,
                    description=tool.description,
                    input_schema=tool.parameters,
                    output_schema=advertised_schema(tool.fn_metadata.output_model),
                    annotations=tool.annotations,
                )
                for tool in self.tools.values()
            ]
        )
