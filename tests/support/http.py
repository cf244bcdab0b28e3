"""The app over real HTTP: uvicorn on a free loopback port, in a thread of the test."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Served:
    """A running server: its base URL, and a way to look inside its event loop."""

    url: str
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def call(self, function: Callable[[], T]) -> T:
        """``function()`` run on the server's loop (its own thread), for a consistent view."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def tasks(self) -> int:
        """How many asyncio tasks the server's loop holds, not counting this question."""
        return self.call(lambda: len(asyncio.all_tasks()) - 1)

    def refreshing(self) -> int:
        """How many cache refreshes (a caller's or ahead of expiry) the server's loop is running."""
        return self.call(
            lambda: sum(
                str(getattr(task.get_coro(), "__qualname__", "")).startswith("ReadThrough.")
                for task in asyncio.all_tasks()
            )
        )

    def write_buffers(self) -> list[int]:
        """Bytes waiting in each open connection's transport, not yet taken by the kernel."""
        return self.call(
            lambda: [
                protocol.transport.get_write_buffer_size()
                for protocol in self.server.server_state.connections
                if getattr(protocol, "transport", None) is not None
            ]
        )


@contextmanager
def serving(app: FastAPI, *, send_buffer_bytes: int | None = None) -> Iterator[Served]:
    """Serve ``app`` until the block ends.

    ``send_buffer_bytes`` shrinks the kernel's send buffer of every accepted connection (they
    inherit it from the listening socket): a slow network, so that a client that stops
    reading pushes back on the server within a few kilobytes.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        with asyncio.Runner() as runner:
            loops.append(runner.get_loop())
            runner.run(server.serve(sockets=[listener]))

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", server, loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    with serving(app) as served:
        yield served.url
