"""MCP clients nobody here wrote: the SDK's own, and the MCP Inspector's CLI from npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = ROOT / "infra/mcp-inspector/node_modules/.bin/mcp-inspector"
# Fields only MCP results have (how a result was cut to fit), beside what REST answers.
MCP_ONLY = frozenset({"truncated", "omitted", "next_since"})
# What differs between two reads of one cache entry: when, and from which tier.
VOLATILE = frozenset({"age_ms", "source"})
PROBLEM_KEYS = ("code", "retryable", "retry_after")


@asynccontextmanager
async def sdk_session(url: str) -> AsyncIterator[ClientSession]:
    """The SDK's client session on ``url``'s ``/mcp``, after the handshake."""
    async with (
        streamable_http_client(f"{url}/mcp") as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def inspector(url: str, *args: str) -> tuple[int, Any]:
    """Run the Inspector's CLI against ``url``'s ``/mcp``: its exit code and what it printed
    on stdout, as JSON. Skips where Node is missing; fails where the CLI is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the MCP Inspector's CLI needs Node.js, which this machine lacks")
    assert INSPECTOR.exists(), (
        f"{INSPECTOR} is missing: install it with `make deps` (npm ci --prefix infra/mcp-inspector)"
    )
    done = subprocess.run(
        [node, str(INSPECTOR), "--cli", f"{url}/mcp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(Path(node).parent), "HOME": str(ROOT / ".cache/mcp-inspector")},
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"the Inspector printed no JSON:\n{done.stdout}\n{done.stderr}"
        ) from None


def problem_of(result: CallToolResult) -> dict[str, Any]:
    """What an error result says of its problem: its code, and whether and when to retry."""
    assert result.is_error, result
    assert result.structured_content is not None, result
    return {k: v for k, v in result.structured_content.items() if k in PROBLEM_KEYS}


def steady(body: Any) -> Any:
    """``body`` without what two reads of the same data may differ in, nor MCP's own fields."""
    if isinstance(body, dict):
        return {k: steady(v) for k, v in body.items() if k not in VOLATILE | MCP_ONLY}
    if isinstance(body, list):
        return [steady(item) for item in body]
    return body
