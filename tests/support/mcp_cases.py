"""What the MCP tests ask: each tool beside its REST route, and arguments drawn from each
tool's own input schema, or junk."""

from __future__ import annotations

import gc
import json
from typing import Any

import hypothesis
import jsonschema_rs
from hypothesis import HealthCheck
from hypothesis import strategies as st
from mcp.server.connection import Connection
from schemathesis.core.jsonschema import CANONICALIZE_DRAFT_BY_VALIDATOR
from schemathesis.generation.jsonschema.builder import build

from tests.support.mcp_clients import steady

BTC = {"exchange": "binance", "symbol": "BTC/USDT"}
# Long enough that every read in a test reads what its first read stored.
STEADY = {
    "ticker_ttl_seconds": 600.0,
    "orderbook_ttl_ms": 600_000,
    "trades_ttl_seconds": 600.0,
    "funding_ttl_seconds": 600.0,
    "ohlcv_open_ttl_seconds": 600.0,
}
# Each tool, asked as its REST route is asked.
SAME_ASK: list[tuple[str, dict[str, Any], str]] = [
    ("list_exchanges", {}, "/exchanges"),
    (
        "search_markets",
        {"exchange": "bybit", "quote": "USDT", "limit": 3},
        "/markets/bybit?quote=USDT&limit=3",
    ),
    ("get_ticker", BTC, "/ticker/binance/BTC/USDT"),
    (
        "get_tickers",
        {"exchange": "binance", "symbols": ["BTC-USDT", "ETH/USDT"]},
        "/tickers/binance?symbols=BTC-USDT,ETH/USDT",
    ),
    (
        "get_ohlcv",
        {**BTC, "timeframe": "5m", "limit": 12},
        "/historical/binance/BTC/USDT?timeframe=5m&limit=12",
    ),
    ("get_orderbook", {**BTC, "depth": 10}, "/orderbook/binance/BTC/USDT?depth=10"),
    (
        "get_trades",
        {"exchange": "kraken", "symbol": "BTC-USD", "limit": 5},
        "/trades/kraken/BTC-USD?limit=5",
    ),
    (
        "get_funding_rate",
        {"exchange": "okx", "symbol": "BTC/USDT:USDT"},
        "/funding/okx/BTC/USDT:USDT",
    ),
    (
        "compare_prices",
        {"symbol": "BTC-USDT", "exchanges": ["binance", "kraken"]},
        "/compare/BTC-USDT?exchanges=binance,kraken",
    ),
]
TOOLS = [name for name, _, _ in SAME_ASK]

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_PARAMETERS = ["exchange", "symbol", "symbols", "exchanges", "timeframe", "since", "until"]
_PARAMETERS += ["limit", "depth", "q", "type", "base", "quote", "active", "cursor"]
# Objects keyed mostly by the tools' own parameter names, anything as their values; and
# arguments that are no object at all.
JUNK = (
    st.dictionaries(st.sampled_from(_PARAMETERS) | st.text(max_size=8), _JSON, max_size=6) | _JSON
)
# Values the loopback exchange serves, offered beside whatever a schema admits, so that
# drawn arguments reach the service's paths (fetches, pages, batches), not only refusals.
HINTS: dict[str, list[Any]] = {
    "exchange": ["binance", "kraken", "okx", "bybit"],
    "symbol": ["BTC/USDT", "ETH-USDT", "BTC/USDT:USDT", "BTC-USD", "btcusdt"],
    "timeframe": ["1m", "1h", "1d"],
}
_PLURAL = {"symbols": "symbol", "exchanges": "exchange"}
# Pydantic writes JSON Schema 2020-12. The generator is schemathesis's own (hypothesis-
# jsonschema, its public ancestor, no longer runs on the hypothesis schemathesis needs): an
# internal module, pinned with schemathesis in uv.lock, which an upgrade may move.
_DRAFT = CANONICALIZE_DRAFT_BY_VALIDATOR[jsonschema_rs.Draft202012Validator]
FUZZ = hypothesis.settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=30,
    suppress_health_check=list(HealthCheck),
)
# What a fresh interpreter has imported of the SDK once the app is built: nothing.
SDK_MODULES_AFTER_INIT = """
import json, sys
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings
create_app(MarketData(Settings(), None))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("mcp", "mcp_types"))))
"""


def from_input_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Arguments ``schema`` admits (by schemathesis's JSON Schema generator), the values of
    :data:`HINTS` among them."""
    return build(hinted(schema), draft=_DRAFT, formats={})


def hinted(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` whose hinted properties (and the items of their plurals) admit the hints
    too: still the schema's values, with served ones likelier."""
    properties = dict(schema.get("properties") or {})
    for name, found in properties.items():
        if name in HINTS:
            properties[name] = {"anyOf": [{"enum": HINTS[name]}, found]}
        elif name in _PLURAL:
            properties[name] = _items_hinted(found, HINTS[_PLURAL[name]])
    return {**schema, "properties": properties}


def _items_hinted(schema: dict[str, Any], hints: list[Any]) -> dict[str, Any]:
    if "anyOf" in schema:
        return {**schema, "anyOf": [_items_hinted(branch, hints) for branch in schema["anyOf"]]}
    if schema.get("type") == "array":
        return {**schema, "items": {"anyOf": [{"enum": hints}, schema["items"]]}}
    return schema


def inspector_arguments(arguments: dict[str, Any]) -> list[str]:
    """``arguments`` as the Inspector's CLI takes them: ``--tool-arg key=value``, a list as
    JSON (the CLI reads strings; the server reads numbers and lists from them)."""
    found: list[str] = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        found += ["--tool-arg", f"{key}={text}"]
    return found


def comparable(answer: Any) -> Any:
    """A JSON-RPC answer as :func:`steady` compares it, the text blocks' JSON read too."""
    result = answer.get("result") if isinstance(answer, dict) else None
    if isinstance(result, dict) and isinstance(result.get("content"), list):
        blocks = [json.loads(block["text"]) for block in result["content"]]
        answer = {**answer, "result": {**result, "content": blocks}}
    return steady(answer)


def live_connections() -> int:
    """How many of the SDK's per-request connections are still alive."""
    gc.collect()
    return sum(isinstance(found, Connection) for found in gc.get_objects())
