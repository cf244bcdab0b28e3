"""What a tool call answers: an answer's body (data and ``freshness``, as REST sends it), cut
to ``MCP_MAX_RESULT_BYTES`` where it has rows to cut, or a service problem.

A problem is a tool result with ``isError`` whose ``structuredContent`` is the problem, as
``problem+json`` carries it over REST: the model reads it, it is never a protocol error. The
SDK validates a successful result against the tool's own model (never an error result); the
schema advertised to clients admits both (:func:`advertised_schema`), because some clients
validate an error result's ``structuredContent`` against it too (the MCP Inspector 2.x CLI,
the TypeScript SDK 1.x).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, TypeAdapter

from market_proxy import errors, models
from market_proxy.answers import Answer
from market_proxy.cache.entry import encode_json

SETTING = "MCP_MAX_RESULT_BYTES"


class Bounded(BaseModel):
    truncated: bool = Field(
        description=f"Whether rows were left out to keep this result within {SETTING}."
    )
    omitted: int = Field(ge=0, description="How many rows were left out.")


class MarketsPage(models.Markets, Bounded):
    """``markets`` cut at the end; when cut, ``next_cursor`` is null: ask a smaller limit."""


class TickersBatch(models.Tickers, Bounded):
    """``tickers`` cut at the end (in the order asked): ask for the others again."""


class TradesPage(models.Trades, Bounded):
    """The oldest ``trades`` are the ones left out (newest last)."""


class CandlesPage(models.Candles, Bounded):
    """The newest ``candles`` are the ones left out: ask again from ``next_since``.
    ``requested``, ``returned`` and ``gaps`` describe the answer before the cut."""

    next_since: int | None = Field(
        description=(
            "The `since` of the next page: the first candle left out, or the end of the "
            "range asked when that is in the past; null when the range reached the present."
        )
    )


@dataclass(frozen=True, slots=True)
class Rows:
    """Where an answer's rows are, which end to keep, and what to add once cut."""

    field: str
    keep_newest: bool = False  # newest last: keep the tail
    finish: Callable[[dict[str, Any], list[Any], int], dict[str, Any]] | None = None


def advertised_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema clients see: ``model``'s, or a problem (an error result's)."""
    schema = TypeAdapter(model | models.InlineProblem).json_schema(mode="serialization")
    return {"type": "object", **schema}


async def reply(
    asked: Awaitable[Answer], max_bytes: int, *, parameter: str, rows: Rows | None = None
) -> CallToolResult:
    """The result of one service call: its body, or its problem."""
    try:
        answer = await asked
    except errors.ProxyError as exc:
        return problem(exc)
    return body_result(answer.body(), max_bytes, parameter=parameter, rows=rows)


def body_result(
    body: dict[str, Any], max_bytes: int, *, parameter: str, rows: Rows | None = None
) -> CallToolResult:
    """``body`` as a result of at most ``max_bytes`` of JSON, or the problem of a body that
    has no rows left to cut and still does not fit (it names ``parameter`` to ask less of)."""
    try:
        fitted, text = _fit(body, max_bytes, rows, parameter)
    except errors.ProxyError as exc:
        return problem(exc)
    return CallToolResult(
        content=[TextContent(type="text", text=text.decode())], structured_content=fitted
    )


def problem(exc: errors.ProxyError) -> CallToolResult:
    """A service problem as an error result; the SDK never validates it against the
    tool's output model (``FuncMetadata.convert_result`` skips ``is_error`` results)."""
    found = exc.problem()
    return CallToolResult(
        content=[TextContent(type="text", text=encode_json(found).decode())],
        structured_content=found,
        is_error=True,
    )


def _fit(
    body: dict[str, Any], max_bytes: int, rows: Rows | None, parameter: str
) -> tuple[dict[str, Any], bytes]:
    whole = body if rows is None else _cut(body, rows, body[rows.field], 0)
    text = encode_json(whole)
    if len(text) <= max_bytes:
        return whole, text
    if rows is None or not body[rows.field]:
        raise _too_large(parameter, len(text), max_bytes)
    everything = body[rows.field]
    keyed = isinstance(everything, Mapping)
    items = list(everything.items() if keyed else everything)
    order = items[::-1] if rows.keep_newest else items
    # What the body takes without its rows (at the largest count left out), then as many
    # rows as fit after it, each with the comma before it.
    budget = max_bytes - len(encode_json(_cut(body, rows, [], len(items))))
    kept = 0
    for item in order:
        budget -= _size(item, keyed) + (1 if kept else 0)
        if budget < 0:
            break
        kept += 1
    while kept > 0:
        chosen = order[:kept][::-1] if rows.keep_newest else order[:kept]
        cut = _cut(body, rows, dict(chosen) if keyed else chosen, len(items) - kept)
        text = encode_json(cut)
        if len(text) <= max_bytes:
            return cut, text
        kept -= 1  # the estimate was a few bytes short (a longer next_since): one row fewer
    raise _too_large(parameter, len(encode_json(whole)), max_bytes)


def _cut(body: dict[str, Any], rows: Rows, part: Any, omitted: int) -> dict[str, Any]:
    """``body`` with ``part`` of its rows, ``omitted`` left out, and what ``rows`` adds."""
    cut = {**body, rows.field: part, "truncated": omitted > 0, "omitted": omitted}
    if rows.finish is None:
        return cut
    everything = list(body[rows.field])
    return rows.finish(cut, everything, len(everything) - omitted)


def _size(item: Any, keyed: bool) -> int:
    if keyed:
        key, value = item
        return len(encode_json(key)) + 1 + len(encode_json(value))
    return len(encode_json(item))


def _too_large(parameter: str, size: int, max_bytes: int) -> errors.ProxyError:
    return errors.InvalidParameter(
        parameter,
        f"the answer takes {size} bytes, more than {SETTING} ({max_bytes}) allows: ask for less",
        valid=f"an answer of at most {max_bytes} bytes",
    )
