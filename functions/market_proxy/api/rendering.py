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


CSV = "text/csv"


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
