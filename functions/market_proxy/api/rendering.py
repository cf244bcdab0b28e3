"""How an answer becomes an HTTP response: JSON body, freshness headers, ETag and 304."""

from __future__ import annotations

import functools
from email.utils import formatdate
from typing import Any

from starlette.responses import Response

from market_proxy.answers import Answer
from market_proxy.cache.entry import encode_json


def freshness_headers(answer: Answer) -> dict[str, str]:
    fresh = answer.freshness
    life = fresh.lifetime
    headers = {
        "ETag": f'"{answer.etag}"',
        "Age": str(fresh.age_ms // 1000),
        "Last-Modified": _http_date(life.fetched_at // 1000),
        "X-Cache": fresh.source,
        "X-Data-Age-Ms": str(fresh.age_ms),
        "X-Fetched-At": str(life.fetched_at),
    }
    if fresh.is_stale:
        headers["Cache-Control"] = "no-cache"
        headers["X-Stale-Reason"] = fresh.stale_reason or "stale"
    else:
        # max-age is the data's whole freshness lifetime: a cache subtracts Age itself
        # (RFC 9111, 4.2), so the remaining freshness is never counted down twice. No
        # stale-while-revalidate or stale-if-error: a cache serving stale data could not
        # mark it stale, as every answer of this service is marked; the service serves
        # stale data itself, marked, within those windows.
        lifetime = max(0, (life.fresh_until - life.fetched_at) // 1000)
        headers["Cache-Control"] = f"public, max-age={lifetime}"
    return headers


@functools.lru_cache(maxsize=1024)
def _http_date(seconds: int) -> str:
    """An HTTP date (seconds are its resolution): many answers share the second they were
    fetched in, and formatting one costs as much as the rest of the headers together."""
    return formatdate(seconds, usegmt=True)


def render(answer: Answer, if_none_match: str | None) -> Response:
    """200 with the body, or 304 when the client already holds this exact payload."""
    headers = freshness_headers(answer)
    if _matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(content=answer.body_json(), headers=headers, media_type="application/json")


JSON = "application/json"
CSV = "text/csv"


def render_candles(
    answer: Answer, if_none_match: str | None, *, accept: str | None, format: str | None
) -> Response:
    """Candles as JSON or as CSV: as ``format`` says, else as ``Accept`` prefers (JSON on a
    tie). Both say ``Vary: Accept``, 304s too: one URL, two representations, so a shared
    cache must not give one client's CSV to another asking for JSON."""
    wanted = format or ("csv" if preferred(accept, (JSON, CSV)) == CSV else "json")
    response = (
        render_csv(answer, if_none_match) if wanted == "csv" else render(answer, if_none_match)
    )
    response.headers["Vary"] = "Accept"
    return response


def preferred(accept: str | None, offered: tuple[str, ...]) -> str:
    """Which of ``offered`` an ``Accept`` header (RFC 9110, 12.5.1) ranks highest: each is
    weighed by the q of the most specific media range that matches it (``text/csv`` before
    ``text/*`` before ``*/*``); a tie goes to the one offered first, and so does a header
    that accepts none of them or cannot be read."""
    ranges: list[tuple[str, str, float]] = []
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append((kind, sub, q))
    best, best_q = offered[0], 0.0
    for media in offered:
        kind, _, sub = media.partition("/")
        matched = [
            ((k == kind) + (s == sub), q)
            for k, s, q in ranges
            if k in (kind, "*") and s in (sub, "*") and not (k == "*" and s != "*")
        ]
        if matched:
            specific = max(rank for rank, _ in matched)
            q = max(q for rank, q in matched if rank == specific)
            if q > best_q:
                best, best_q = media, q
    return best


def render_csv(answer: Answer, if_none_match: str | None) -> Response:
    """Candles as ``text/csv``: a header row (the answer's ``columns``), then one row a
    candle, integer timestamps first. Its ETag is the JSON answer's with ``-csv`` added:
    another representation of the same data."""
    headers = freshness_headers(answer)
    headers["ETag"] = f'"{answer.etag}-csv"'
    if _matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    lines = [",".join(answer.data["columns"])]
    lines.extend(",".join(map(repr, row)) for row in answer.data["candles"])
    return Response(
        content="\n".join(lines) + "\n", headers=headers, media_type=f"{CSV}; charset=utf-8"
    )


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=encode_json(body),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
