"""Shapes only the HTTP API has: problem details and the stream events that carry them.

The service's answers are defined once, in :mod:`market_proxy.models`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from market_proxy import models


class FieldError(BaseModel):
    parameter: str | None = Field(description="The parameter that is wrong, e.g. `limit`.")
    message: str | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str = Field(description="Stable, machine-readable reason.")
    retryable: bool
    parameter: str | None = Field(default=None, description="The parameter at fault.")
    valid: list[Any] | str | None = Field(
        default=None, description="What would be valid: the values, a range, or an example."
    )
    suggestions: list[str] | None = Field(
        default=None, description="Markets with a close name (`unknown_market`)."
    )
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before retrying, as in `Retry-After`."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Each part of the request that is wrong (`invalid_request`)."
    )


class ProblemType(BaseModel):
    code: str
    status: int
    title: str
    retryable: bool


class ProblemTypes(BaseModel):
    problems: list[ProblemType]


class StreamProblem(models.InlineProblem):
    """The data of a stream's ``problem`` event: one symbol cannot be refreshed for now
    (the members of problem+json answers, and the symbol)."""

    symbol: str


class Reconnect(BaseModel):
    """The data of a stream's last event, sent before its time limit."""

    reason: Literal["time_limit"]
    retry_ms: int = Field(description="Reconnect after this long, with the event's id.")
