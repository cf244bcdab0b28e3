"""Live tickers over SSE, read by a real SSE client over real HTTP (uvicorn)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from infra.exchange_sim import ExchangeSim
from market_proxy import observability
from market_proxy.api.app import create_app
from market_proxy.models import Ticker
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from market_proxy.streams import MAX_EVENT_ID_LENGTH, MAX_SYMBOLS, streams_open
from market_proxy.symbols import MAX_SYMBOL_LENGTH
from tests.support.http import serve, serving
from tests.support.streams import (
    FAST_STREAMS,
    closed_by_server,
    eventually,
    open_raw_stream,
    read_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def stream_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST_STREAMS)


@pytest.fixture
def url(stream_settings: Settings) -> Iterator[str]:
    with serve(create_app(MarketData.from_settings(stream_settings))) as base:
        yield base


def events(
    url: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    limit: int = 1,
    timeout: float = 10,
) -> list[ServerSentEvent]:
    """The first ``limit`` events (of any name) of a stream."""
    seen: list[ServerSentEvent] = []
    with (
        httpx.Client(base_url=url, timeout=timeout) as client,
        connect_sse(client, "GET", path, headers=headers or {}) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            seen.append(sse)
            if len(seen) >= limit:
                break
    return seen


def test_a_stream_sends_a_retry_hint_then_the_ticker_with_an_id(url: str, sim: ExchangeSim) -> None:
    sim.set_ticker("binance", "BTCUSDT", last=70000.0, bid=69999.0, ask=70001.0)
    (first,) = events(url, "/sse/ticker/binance/BTC-USDT")
    assert first.event == "ticker"
    assert first.retry == 1500
    assert first.id
    ticker = Ticker.model_validate(first.json())
    assert ticker.last == 70000.0
    assert ticker.symbol == "BTC/USDT"


def test_an_event_comes_only_when_the_ticker_changes_and_heartbeats_fill_the_silence(
    url: str, sim: ExchangeSim
) -> None:
    # Given a ticker that holds still,
    sim.set_ticker("binance", "ETHUSDT", last=3500.0)
    lines: list[str] = []
    moved = False
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", "/sse/ticker/binance/ETH-USDT") as response,
    ):
        for line in response.iter_lines():
            lines.append(line)
            # when the stream has gone quiet long enough for a heartbeat, the price moves,
            if line.startswith(": heartbeat") and not moved:
                sim.set_ticker("binance", "ETHUSDT", last=3600.0)
                moved = True
            if '"last":3600.0' in line:
                break
    # then the stream sent one event per state and only heartbeats while nothing changed.
    data = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert [d["last"] for d in data] == [3500.0, 3600.0], (
        "one event per change, none while unchanged"
    )
    first_heartbeat = next(i for i, line in enumerate(lines) if line.startswith(": heartbeat"))
    assert not [line for line in lines[:first_heartbeat] if '"last":3600.0' in line]


def test_a_client_resuming_with_last_event_id_is_not_sent_what_it_has(
    url: str, sim: ExchangeSim
) -> None:
    # Given a client that holds the latest event of a ticker,
    sim.set_ticker("kraken", "XXBTZUSD", last=65000.0)
    (first,) = events(url, "/sse/ticker/kraken/BTC-USD")
    seen: list[str] = []
    moved = False
    # when it reconnects with that event's id,
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream(
            "GET", "/sse/ticker/kraken/BTC-USD", headers={"Last-Event-ID": first.id}
        ) as response,
    ):
        for line in response.iter_lines():
            seen.append(line)
            # (once the stream has shown it has nothing new to send, the price moves)
            if line.startswith(": heartbeat") and not moved:
                sim.set_ticker("kraken", "XXBTZUSD", last=65100.0)
                moved = True
            if line.startswith("data: "):
                break
    # then the first event it is sent is the change, not what it already had.
    data = [json.loads(line[len("data: ") :]) for line in seen if line.startswith("data: ")]
    assert [d["last"] for d in data] == [65100.0]
    ids = [line[len("id: ") :] for line in seen if line.startswith("id: ")]
    assert ids
    assert ids[-1] != first.id


def test_several_symbols_share_one_stream_and_its_ids(url: str) -> None:
    seen = events(url, "/sse/tickers/binance?symbols=BTC/USDT,eth-usdt,BTCUSDT", limit=2)
    assert {e.json()["symbol"] for e in seen} == {"BTC/USDT", "ETH/USDT"}
    assert len(seen[-1].id.split(".")) == 2, "duplicates of one market are streamed once"


def test_the_stream_ends_with_a_reconnect_event_before_its_time_limit(settings: Settings) -> None:
    short = settings.model_copy(update={**FAST_STREAMS, "stream_max_seconds": 1.0})
    with serve(create_app(MarketData.from_settings(short))) as url:
        started = time.monotonic()
        seen = events(url, "/sse/ticker/binance/BTC-USDT", limit=50)
        took = time.monotonic() - started
    assert seen[-1].event == "reconnect"
    assert seen[-1].json() == {"reason": "time_limit", "retry_ms": 1500}
    assert seen[-1].id, "a reconnecting client resumes from the last state"
    assert took < 5


def test_a_poll_still_waiting_on_the_exchange_at_the_time_limit_ends_the_stream_on_time(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given a stream of a second and an exchange that answers in four,
    short = settings.model_copy(update={**FAST_STREAMS, "stream_max_seconds": 1.0})
    with serve(create_app(MarketData.from_settings(short))) as url:
        assert httpx.get(f"{url}/ticker/binance/BTC-USDT", timeout=10).status_code == 200
        sim.set_latency(4.0)
        # when a client reads it from its first poll on,
        started = time.monotonic()
        seen = events(url, "/sse/ticker/binance/ETH-USDT", limit=50)
        took = time.monotonic() - started
        sim.set_latency(0.0)
    # then it ends as any stream does, with its reconnect event, without waiting the answer.
    assert [sse.event for sse in seen if sse.event != "message"][-1:] == ["reconnect"]
    assert seen[-1].json()["reason"] == "time_limit"
    assert took < 4.0


def test_a_client_going_away_ends_the_streams_work(url: str) -> None:
    before = streams_open.active
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", "/sse/ticker/binance/BTC-USDT") as response,
    ):
        lines = response.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)
        assert streams_open.active == before + 1
    deadline = time.monotonic() + 5
    while streams_open.active != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams_open.active == before


def test_fifty_subscribers_of_one_symbol_cost_what_one_does(url: str, sim: ExchangeSim) -> None:
    with httpx.Client(base_url=url, timeout=10) as warm:
        warm.get("/ticker/binance/BTC-USDT")
    sim.reset_calls()
    subscribers = 50
    stop = threading.Event()
    received = [0] * subscribers
    first_event = [threading.Event() for _ in range(subscribers)]

    def subscribe(index: int) -> None:
        with (
            httpx.Client(base_url=url, timeout=30) as client,
            client.stream("GET", "/sse/ticker/binance/BTC-USDT") as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received[index] += 1
                    first_event[index].set()
                if stop.is_set():
                    break

    # Given fifty subscribers of one symbol, each listening until every one has its ticker,
    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(subscribers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    deadline = started + 60
    everyone = all(event.wait(max(0.0, deadline - time.monotonic())) for event in first_event)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    calls = sim.calls("binance", "ticker")
    lasted = time.monotonic() - started
    # then each was sent the ticker,
    assert everyone, f"subscribers without an event: {received.count(0)}"
    # and, fresh for 0.2 s, the exchange was asked at most once per window while they
    # listened (plus the first), as one subscriber alone would have asked it.
    assert calls <= lasted / 0.2 + 1


TOO_MANY = ",".join(f"SIM{i:04d}USDT" for i in range(MAX_SYMBOLS)) + ",BTCUSDT"
TOO_LONG_ID = "-" * (MAX_EVENT_ID_LENGTH + 1)


@pytest.mark.parametrize(
    ("path", "headers", "status", "code", "parameter"),
    [
        ("/sse/ticker/binance/BTC-USDT?interval=0.01", {}, 400, "invalid_parameter", "interval"),
        ("/sse/ticker/binance/BTC-USDT?interval=3600", {}, 400, "invalid_parameter", "interval"),
        ("/sse/ticker/binance/BTC-USDT?interval=nan", {}, 400, "invalid_parameter", "interval"),
        ("/sse/ticker/binance/BTC-USDT?interval=soon", {}, 422, "invalid_request", "interval"),
        ("/sse/ticker/binance/BTC%20USDT", {}, 400, "invalid_parameter", "symbol"),
        ("/sse/ticker/binance/NOPE-USDT", {}, 404, "unknown_market", None),
        ("/sse/ticker/nowhere/BTC-USDT", {}, 404, "unknown_exchange", None),
        ("/sse/ticker/no.where/BTC-USDT", {}, 422, "invalid_request", "exchange"),
        ("/sse/tickers/binance?symbols=", {}, 400, "invalid_parameter", "symbols"),
        ("/sse/tickers/binance?symbols=,%20,", {}, 400, "invalid_parameter", "symbols"),
        (f"/sse/tickers/binance?symbols={TOO_MANY}", {}, 400, "invalid_parameter", "symbols"),
        ("/sse/tickers/binance?symbols=BTCUSDT,ETH%09USDT", {}, 400, "invalid_parameter", "symbol"),
        (
            "/sse/tickers/binance?symbols=" + "A" * (MAX_SYMBOLS * (MAX_SYMBOL_LENGTH + 3) + 1),
            {},
            422,
            "invalid_request",
            "symbols",
        ),
        (
            f"/sse/ticker/binance/BTC-USDT?last_event_id={TOO_LONG_ID}",
            {},
            422,
            "invalid_request",
            "last_event_id",
        ),
        (
            "/sse/ticker/binance/BTC-USDT",
            {"Last-Event-ID": TOO_LONG_ID},
            422,
            "invalid_request",
            "Last-Event-ID",
        ),
    ],
)
def test_a_stream_that_cannot_start_is_refused_as_problem_json(
    url: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: str,
    parameter: str | None,
) -> None:
    response = httpx.get(url + path, headers=headers, timeout=10)
    body: dict[str, Any] = response.json()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert body["code"] == code
    named = body.get("parameter") or [e["parameter"] for e in body.get("errors", [])]
    if parameter is not None:
        assert parameter in named
    if code == "invalid_parameter":
        assert body["valid"]


def test_twenty_symbols_stream_and_a_malformed_last_event_id_means_from_scratch(
    url: str,
) -> None:
    (first,) = events(
        url,
        f"/sse/tickers/binance?symbols={TOO_MANY.rsplit(',', 1)[0]}",
        headers={"Last-Event-ID": "not.one.of.ours"},
    )
    assert first.event == "ticker"
    assert len(first.id.split(".")) == MAX_SYMBOLS


def test_an_order_book_stream_sends_the_top_of_the_book_when_it_changes(
    url: str, sim: ExchangeSim
) -> None:
    # Given a book that holds still, then moves once the stream has gone quiet,
    sim.set_ticker("binance", "BTCUSDT", last=50_000.0)
    books: list[dict[str, Any]] = []
    ids: list[str] = []
    moved = False
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        connect_sse(client, "GET", "/sse/orderbook/binance/BTC-USDT?depth=3") as source,
    ):
        for sse in source.iter_sse():
            if sse.event == "orderbook":
                books.append(sse.json())
                ids.append(sse.id)
                if not moved:
                    sim.set_ticker("binance", "BTCUSDT", last=51_000.0)
                    moved = True
            if len(books) == 2:
                break
    # then each event is a book of the depth asked for, and a new one came with the move.
    assert [len(book["bids"]) for book in books] == [3, 3]
    assert books[0]["bids"] != books[1]["bids"]
    assert books[1]["mid"] > books[0]["mid"]
    assert ids[0] != ids[1]


def test_an_order_book_stream_refuses_a_depth_past_the_bound_before_streaming(url: str) -> None:
    response = httpx.get(f"{url}/sse/orderbook/binance/BTC-USDT?depth=5000", timeout=10)
    assert response.status_code == 400
    assert response.json()["parameter"] == "depth"


# The service's (Powertools names it for the service), uvicorn's (which do not propagate),
# and asyncio's, which says when a connection is written to after it was lost.
WATCHED_LOGGERS = ("market-data-proxy", "uvicorn", "uvicorn.error", "asyncio")


class _Problems(logging.Handler):
    """What the server logs at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_that_stops_reading_is_dropped_within_two_heartbeats_and_readers_are_kept(
    settings: Settings, sim: ExchangeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a busy stream of twenty moving tickers, heartbeats every second and a time
    # limit far off, served with the kernel's own (large) send buffers,
    heartbeat_s = 1.0
    busy = settings.model_copy(
        update={**FAST_STREAMS, "stream_heartbeat_seconds": heartbeat_s, "stream_max_seconds": 60}
    )
    markets = [m.id for m in sim.book.of_kind("binance", "spot")][:MAX_SYMBOLS]
    path = f"/sse/tickers/binance?symbols={','.join(markets)}"
    counted: list[str] = []

    def counting(name: str, value: float = 1, *, exchange: str | None = None) -> None:
        counted.append(name)
        observability.count(name, value, exchange=exchange)

    monkeypatch.setattr("market_proxy.api.streaming.count", counting)
    problems = _Problems()
    for name in WATCHED_LOGGERS:
        logging.getLogger(name).addHandler(problems)
    stop = threading.Event()
    last_read = [0.0, 0.0]  # when each reader last received something
    failures: list[BaseException] = []

    def move_every_price() -> None:
        price = 100.0
        while not stop.wait(0.05):
            price += 1
            for market in markets:
                sim.set_ticker("binance", market, last=price, bid=price - 0.5, ask=price + 0.5)

    def read_steadily() -> None:  # an SSE client that reads all the time
        try:
            with (
                httpx.Client(base_url=served.url, timeout=10) as client,
                client.stream("GET", path) as response,
            ):
                for _ in response.iter_lines():
                    last_read[0] = time.monotonic()
                    if stop.is_set():
                        return
        except BaseException as exc:
            failures.append(exc)

    def read_in_bursts() -> None:
        # A small buffer, read in full twice a heartbeat: in each pause it is full within a
        # fraction of a second and what follows waits unacknowledged, but never for long.
        try:
            with open_raw_stream(served.address, path, rcvbuf=4096) as sock:
                while not stop.wait(heartbeat_s / 2):
                    sock.settimeout(0.2)
                    with contextlib.suppress(TimeoutError):
                        while True:  # until nothing more comes for a moment
                            if not sock.recv(65536):
                                raise ConnectionError("the server closed the stream")
                            last_read[1] = time.monotonic()
        except BaseException as exc:
            failures.append(exc)

    app = create_app(MarketData.from_settings(busy))
    with serving(app) as served:
        httpx.get(f"{served.url}/ticker/binance/BTC-USDT", timeout=10).raise_for_status()
        threads = [threading.Thread(target=f) for f in (move_every_price, read_steadily)]
        threads.append(threading.Thread(target=read_in_bursts))
        for thread in threads:
            thread.start()
        try:
            assert eventually(lambda: min(last_read) > 0, within=20), "both readers stream"
            before = streams_open.active
            # when a client reads the headers and its first event, then stops reading,
            sock = open_raw_stream(served.address, path, rcvbuf=4096)
            read_until(sock, b"}\n\n")
            stopped_at = time.monotonic()
            # then the server abandons its stream once what it sent two heartbeats ago is
            # still unread (its receive buffer is full within a second of this traffic),
            assert eventually(lambda: "StreamsAbandoned" in counted, within=15)
            dropped_after = time.monotonic() - stopped_at
            assert closed_by_server(sock, within=10), "its connection was ended"
            sock.close()
            assert eventually(lambda: streams_open.active == before), "its work ended"
            # while the readers, on the same stream, stream on for three heartbeats more.
            dropped_at = time.monotonic()
            assert eventually(lambda: min(last_read) > dropped_at + 3 * heartbeat_s, within=20), (
                f"readers' last reads {[round(t - dropped_at, 1) for t in last_read]} s after "
                f"the drop (steady, bursts); {failures}"
            )
            assert not failures
            assert counted.count("StreamsAbandoned") == 1
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
            for name in WATCHED_LOGGERS:
                logging.getLogger(name).removeHandler(problems)
    assert dropped_after < busy.stream_max_seconds / 2, "long before the time limit"
    assert [r.getMessage() for r in problems.records] == [
        "stream abandoned: the client stopped reading"
    ], "no error and no traceback: one warning"
