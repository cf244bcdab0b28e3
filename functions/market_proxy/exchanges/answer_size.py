"""Exchange answers read with a size cap: a body past the cap of its kind is never held.

aiohttp reads a whole body into memory before ccxt parses it, so one exchange (or anything
between it and us) sending hundreds of megabytes would cost a Lambda its memory. Every
exchange client's HTTP session reads answers through a response class that stops
reading at the cap in force for the current task (set by the gateway per call, from
``UPSTREAM_MAX_BYTES``) and raises; ccxt wraps it as a failed
request, which the service answers as an unreadable answer (502) and keeps nothing of.
The cap counts the bytes after decompression, so a compressed bomb is cut as early.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CHUNK = 64 * 1024

# The most bytes an answer read in the current task may hold (None: no cap).
_cap: ContextVar[int | None] = ContextVar("answer_cap", default=None)


@contextmanager
def capped(most_bytes: int | None) -> Iterator[None]:
    """Answers read inside the block hold at most ``most_bytes`` (None: no cap)."""
    token = _cap.set(most_bytes)
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
            cap = _cap.get()
            if self._body is None and cap is not None:
                try:
                    self._body = await self._read_up_to(cap)
                except BaseException:
                    self.close()  # the rest is never read: the connection is dropped
                    raise
            return await super().read()

        async def _read_up_to(self, cap: int) -> bytes:
            declared = self.content_length
            if declared is not None and declared > cap:
                raise AnswerTooLarge(cap)
            chunks: list[bytes] = []
            held = 0
            async for chunk in self.content.iter_chunked(_CHUNK):
                held += len(chunk)
                if held > cap:
                    raise AnswerTooLarge(cap)
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
