"""Exchange answers read with a size cap: a body past the cap of its kind is never held.

aiohttp reads a whole body into memory before ccxt parses it, so one exchange (or anything
between it and us) sending hundreds of megabytes would cost a Lambda its memory. Every
exchange client's HTTP session reads answers through a response class that stops
reading at the cap in force for the current task (set by the gateway per call, from
``UPSTREAM_MAX_BYTES``) and raises; ccxt wraps it as a failed
request, which the service answers as an unreadable answer (502) and keeps nothing of.
The cap counts the bytes after decompression, so a compressed bomb is cut as early, and it
is one allowance for the whole call, not for each answer: ccxt loads an exchange's markets
with several requests at once (spot, linear, inverse, options), each of which could
otherwise come close to the cap.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CHUNK = 64 * 1024


class _Allowance:
    """What the answers of one call may still hold; shared by the tasks the call starts."""

    __slots__ = ("cap", "left")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.left = cap


# The allowance of the call in the current task (None: no cap).
_cap: ContextVar[_Allowance | None] = ContextVar("answer_cap", default=None)


@contextmanager
def capped(most_bytes: int | None) -> Iterator[None]:
    """Answers read inside the block hold at most ``most_bytes`` together (None: no cap)."""
    token = _cap.set(_Allowance(most_bytes) if most_bytes is not None else None)
    try:
        yield
    finally:
        _cap.reset(token)


def too_large(exc: BaseException) -> int | None:
    """The cap an answer went past, when ``exc`` (as ccxt raised it) is that failure."""
    cause = exc.__cause__
    return getattr(cause, "answer_cap", None) if cause is not None else None


@functools.cache
def response_class() -> type[Any]:
    """aiohttp's response reading its body no further than the task's cap (made on first
    use: aiohttp, like ccxt, is imported only when an exchange is first called)."""
    import aiohttp

    class AnswerTooLarge(aiohttp.ClientPayloadError):
        """An exchange answer longer than the cap for its kind."""

        def __init__(self, cap: int) -> None:
            super().__init__(f"an answer larger than {cap} bytes")
            self.answer_cap = cap

    class CappedResponse(aiohttp.ClientResponse):
        async def read(self) -> bytes:
            allowance = _cap.get()
            if self._body is None and allowance is not None:
                try:
                    self._body = await self._read_up_to(allowance)
                except BaseException:
                    self.close()  # the rest is never read: the connection is dropped
                    raise
            return await super().read()

        async def _read_up_to(self, allowance: _Allowance) -> bytes:
            declared = self.content_length
            if declared is not None and declared > allowance.left:
                raise AnswerTooLarge(allowance.cap)
            chunks: list[bytes] = []
            async for chunk in self.content.iter_chunked(_CHUNK):
                allowance.left -= len(chunk)
                if allowance.left < 0:
                    raise AnswerTooLarge(allowance.cap)
                chunks.append(chunk)
            return b"".join(chunks)

    return CappedResponse


def read_capped(client: Any) -> None:
    """Make every HTTP session of a ccxt client (made on its first request, and again after
    each reopening) read answers through the capped response class."""
    opened = client.open
    capped_class = response_class()

    def open_capped(*args: Any, **kwargs: Any) -> Any:
        result = opened(*args, **kwargs)
        session = client.session
        if session is not None and session._response_class is not capped_class:
            session._response_class = capped_class  # aiohttp's response_class=, late
        return result

    client.open = open_capped
