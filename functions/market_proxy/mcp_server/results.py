"""What a tool call answers: an answer's body (data and ``freshness``, as REST sends it), cut
to fit ``MCP_MAX_RESULT_BYTES`` where it has rows to cut, or a service problem.

The setting bounds the whole result as it is sent: ``structuredContent`` and the text block,
which repeats it as JSON text (the spec's SHOULD, for clients that pass only ``content`` to
the model: a short summary there would hide the data from them), with the envelope and the
text's escaping counted. So the data itself takes a little under half the setting. Some
clients show the model both blocks, some one: either way the agent receives no more than
the setting.

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

import orjson
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
    """``markets`` cut at the end; ``next_cursor`` continues after the last one kept."""


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
    """Where an answer's rows are, which end to keep, and what to add once cut.

    ``again``: the same ask for only its first ``n`` rows, asked when a cut keeps ``n``,
    so that the answer's own continuation (a markets page's ``next_cursor``) starts right
    after the rows kept.
    """

    field: str
    keep_newest: bool = False  # newest last: keep the tail
    finish: Callable[[dict[str, Any], list[Any], int], dict[str, Any]] | None = None
    again: Callable[[int], Awaitable[Answer]] | None = None


def advertised_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema clients see: ``model``'s, or a problem (an error result's)."""
    schema = TypeAdapter(model | models.InlineProblem).json_schema(mode="serialization")
    return {"type": "object", **schema}


async def reply(
    asked: Awaitable[Answer], max_bytes: int, *, parameter: str, rows: Rows | None = None
) -> CallToolResult:
    """The result of one service call: its body, or its problem. A cut whose rows say how
    to continue (``rows.again``) costs a second call, for the rows kept."""
    try:
        body = (await asked).body()
        fitted, text = _fit(body, max_bytes, rows, parameter)
        if rows is not None and rows.again is not None and fitted.get("omitted"):
            fitted, text = await _asked_again(rows, rows.again, body, fitted, max_bytes, parameter)
    except errors.ProxyError as exc:
        return problem(exc)
    return _result(fitted, text)


def body_result(
    body: dict[str, Any], max_bytes: int, *, parameter: str, rows: Rows | None = None
) -> CallToolResult:
    """``body`` as a result of at most ``max_bytes`` as sent, or the problem of a body that
    has no rows left to cut and still does not fit (it names ``parameter`` to ask less of)."""
    try:
        fitted, text = _fit(body, max_bytes, rows, parameter)
    except errors.ProxyError as exc:
        return problem(exc)
    return _result(fitted, text)


def problem(exc: errors.ProxyError) -> CallToolResult:
    """A service problem as an error result; the SDK never validates it against the
    tool's output model (``FuncMetadata.convert_result`` skips ``is_error`` results)."""
    found = exc.problem()
    return CallToolResult(
        content=[TextContent(type="text", text=encode_json(found).decode())],
        structured_content=found,
        is_error=True,
    )


def wire_size(data: bytes) -> int:
    """What a result whose ``structuredContent`` is the JSON ``data`` takes as sent: the data,
    its text block (escaped as a JSON string) and the envelope around them."""
    return len(data) + _escaped(data) + ENVELOPE


# The result's own members ("content", "type", "isError"), and in the 2026-07-28 era
# "resultType" and the server's stamp in "_meta": about 200 bytes.
ENVELOPE = 256


def _result(fitted: dict[str, Any], text: bytes) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text.decode())], structured_content=fitted
    )


def _escaped(data: bytes) -> int:
    # A JSON text as a JSON string: quotes and backslashes (and controls) escaped.
    return len(orjson.dumps(data.decode())) - 2


def _fit(
    body: dict[str, Any], max_bytes: int, rows: Rows | None, parameter: str
) -> tuple[dict[str, Any], bytes]:
    whole = body if rows is None else _cut(body, rows, body[rows.field], 0)
    text = encode_json(whole)
    if wire_size(text) <= max_bytes:
        return whole, text
    if rows is None or not body[rows.field]:
        raise _too_large(parameter, wire_size(text), max_bytes)
    everything = body[rows.field]
    keyed = isinstance(everything, Mapping)
    items = list(everything.items() if keyed else everything)
    order = items[::-1] if rows.keep_newest else items
    # What the body takes without its rows (at the largest count left out), then as many
    # rows as fit after it, each with the comma before it, in both blocks.
    budget = max_bytes - wire_size(encode_json(_cut(body, rows, [], len(items))))
    kept = 0
    for item in order:
        budget -= _size(item, keyed) + (2 if kept else 0)
        if budget < 0:
            break
        kept += 1
    while kept > 0:
        chosen = order[:kept][::-1] if rows.keep_newest else order[:kept]
        cut = _cut(body, rows, dict(chosen) if keyed else chosen, len(items) - kept)
        text = encode_json(cut)
        if wire_size(text) <= max_bytes:
            return cut, text
        kept -= 1  # the estimate was a few bytes short (a longer next_since): one row fewer
    raise _too_large(parameter, wire_size(encode_json(whole)), max_bytes)


async def _asked_again(
    rows: Rows,
    again: Callable[[int], Awaitable[Answer]],
    body: dict[str, Any],
    fitted: dict[str, Any],
    max_bytes: int,
    parameter: str,
) -> tuple[dict[str, Any], bytes]:
    total = len(body[rows.field])
    kept = total - int(fitted["omitted"])
    while kept > 0:
        narrower = (await again(kept)).body()
        part = narrower[rows.field]
        cut = _cut(narrower, rows, part, total - len(part))
        text = encode_json(cut)
        if wire_size(text) <= max_bytes:
            return cut, text
        kept = len(part) - 1  # its continuation is a few bytes longer: one row fewer
    raise _too_large(parameter, wire_size(encode_json(body)), max_bytes)


def _cut(body: dict[str, Any], rows: Rows, part: Any, omitted: int) -> dict[str, Any]:
    """``body`` with ``part`` of its rows, ``omitted`` left out, and what ``rows`` adds."""
    cut = {**body, rows.field: part, "truncated": omitted > 0, "omitted": omitted}
    if rows.finish is None:
        return cut
    everything = list(body[rows.field])
    return rows.finish(cut, everything, len(everything) - omitted)


def _size(item: Any, keyed: bool) -> int:
    """What ``item`` takes in both blocks: as JSON, and as that JSON escaped."""
    # A member "key":value takes what "key",value does.
    data = encode_json(list(item))[1:-1] if keyed else encode_json(item)
    return len(data) + _escaped(data)


def _too_large(parameter: str, size: int, max_bytes: int) -> errors.ProxyError:
    return errors.InvalidParameter(
        parameter,
        f"the result takes {size} bytes, more than {SETTING} ({max_bytes}) allows: ask for less",
        valid=f"a result of at most {max_bytes} bytes",
    )
