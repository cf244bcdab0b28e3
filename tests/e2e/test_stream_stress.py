"""Streams under stress, over real HTTP (uvicorn) with raw sockets and a real SSE client:
clients that vanish mid-stream, a client that never reads, and a reconnect storm.

After each, the stream's work has ended (the open-streams gauge is back where it was), the
server's event loop holds no more tasks than before, and the exchange was asked no more
often than the cache allows.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from market_proxy.streams import MAX_SYMBOLS, streams_open
from tests.support.http import Served, serving
from tests.support.streams import FAST_STREAMS, eventually, open_raw_stream, read_until

pytestmark = pytest.mark.e2e
STRESS = {**FAST_STREAMS, "stream_min_interval_seconds": 0.05, "stream_max_seconds": 3.0}
CLEANUP_S = 5.0  # how long the server may take to notice and clean up


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    app = create_app(MarketData.from_settings(settings.model_copy(update=STRESS)))
    with serving(app) as running:
        yield running


def quiet_baseline(served: Served) -> tuple[int, int]:
    """Streams open and loop tasks once a warm-up request has settled (markets loaded)."""
    httpx.get(f"{served.url}/ticker/binance/BTC-USDT", timeout=10).raise_for_status()
    assert eventually(lambda: served.refreshing() == 0), "the warm-up's refreshes ended"
    return streams_open.active, served.tasks()


def open_stream(served: Served, path: str, *, headers: str = "", rcvbuf: int = 0) -> socket.socket:
    """A raw connection that has sent ``GET path`` and read nothing yet."""
    return open_raw_stream(served.address, path, headers=headers, rcvbuf=rcvbuf)


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a crashed client or a dropped network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def settled(served: Served, streams: int, tasks: int) -> None:
    assert eventually(lambda: streams_open.active == streams), "every stream's work ended"
    assert eventually(lambda: served.tasks() <= tasks), "no task outlived its stream"


def test_clients_that_vanish_mid_stream_leave_no_stream_and_no_task_behind(
    served: Served,
) -> None:
    streams, tasks = quiet_baseline(served)
    clients = 30
    all_streaming = threading.Barrier(clients + 1, timeout=30)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        try:
            sock = open_stream(served, "/sse/ticker/binance/BTC-USDT")
            # Some leave inside the first event, some after it.
            read_until(sock, b"data:" if index % 2 else b"}\n\n")
            all_streaming.wait()
            if index % 3 == 0:
                reset(sock)
            elif index % 3 == 1:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            else:
                sock.close()
        except BaseException as exc:
            failures.append(exc)
            all_streaming.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        all_streaming.wait()
    except threading.BrokenBarrierError:
        pytest.fail(f"a client could not stream: {failures}")
    assert streams_open.active == streams + clients
    for thread in threads:
        thread.join(timeout=30)

    assert not failures
    settled(served, streams, tasks)
    assert eventually(lambda: not served.server.server_state.connections)


def test_a_client_that_never_reads_cannot_hold_a_stream_past_its_time_limit(
    settings: Settings, sim: ExchangeSim
) -> None:
    fast = settings.model_copy(
        update={**STRESS, "ticker_ttl_seconds": 0.05, "stream_interval_seconds": 0.05}
    )
    markets = [m.id for m in sim.book.of_kind("binance", "spot")][:MAX_SYMBOLS]
    stop = threading.Event()

    def move_every_price() -> None:  # every poll has a full page of events to send
        price = 100.0
        while not stop.wait(0.01):
            price += 1
            for market in markets:
                sim.set_ticker("binance", market, last=price, bid=price - 0.5, ask=price + 0.5)

    # A slow network: a few kilobytes in flight fill the connection.
    with serving(create_app(MarketData.from_settings(fast)), send_buffer_bytes=4096) as served:
        streams, tasks = quiet_baseline(served)
        mover = threading.Thread(target=move_every_price)
        mover.start()
        sock = open_stream(
            served, f"/sse/tickers/binance?symbols={','.join(markets)}&interval=0.05", rcvbuf=4096
        )
        try:
            assert eventually(lambda: streams_open.active == streams + 1), "the stream started"
            held_back: list[int] = []

            def stream_ended() -> bool:
                held_back.extend(served.write_buffers())
                return streams_open.active == streams

            # At its time limit, or sooner once the client missed two heartbeats.
            limit = fast.stream_max_seconds + fast.stream_heartbeat_seconds
            assert eventually(stream_ended, within=limit + CLEANUP_S), "the stream ended"
            # Streams poll from their own tasks, and refreshes run as tasks: none is left.
            assert eventually(lambda: served.tasks() <= tasks), "no task outlived its stream"
            assert served.refreshing() == 0, "nothing polls for it any more"
        finally:
            stop.set()
            mover.join()
            sock.close()
        assert eventually(lambda: not served.server.server_state.connections)
    assert max(held_back) > 0, "the client's full connection did push back on the server"
    assert max(held_back) <= 256 * 1024, "what waits for the client stays bounded"


def test_a_reconnect_storm_leaves_no_work_behind_and_costs_what_the_cache_allows(
    served: Served, sim: ExchangeSim
) -> None:
    streams, tasks = quiet_baseline(served)
    sim.reset_calls()
    cycles, workers = 200, 8
    statuses: Counter[int | str] = Counter()
    last_ids: list[str] = []
    resumed: list[str] = []
    lock = threading.Lock()
    path = "/sse/ticker/binance/BTC-USDT"

    def cycle(client: httpx.Client, index: int) -> None:
        if index % 10 == 9:  # gone before the answer starts
            reset(open_stream(served, path))
            with lock:
                statuses["left early"] += 1
            return
        with lock:
            resume = last_ids[-1] if last_ids and index % 2 else None
            resumed.extend([resume] if resume else [])
        headers = {"Last-Event-ID": resume} if resume else {}
        with client.stream("GET", path, headers=headers) as response:
            for line in response.iter_lines():  # the first event, or a heartbeat if current
                if line.startswith("id: "):
                    with lock:
                        last_ids.append(line[4:])
                if line == "" or line.startswith(":"):
                    break
        with lock:
            statuses[response.status_code] += 1

    def worker(offset: int) -> None:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            for index in range(offset, cycles, workers):
                cycle(client, index)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    lasted = time.monotonic() - started

    assert statuses == {200: cycles - cycles // 10, "left early": cycles // 10}
    assert len(resumed) > cycles // 4, "many reconnected with the id they had been sent"
    settled(served, streams, tasks)
    assert eventually(lambda: not served.server.server_state.connections)
    # Fresh for 0.2 s: at most one ticker call per window while the storm lasted, plus one.
    assert sim.calls("binance", "ticker") <= lasted / STRESS["ticker_ttl_seconds"] + 1
