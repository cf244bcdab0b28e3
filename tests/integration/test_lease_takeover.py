"""A refresh lease across containers, on DynamoDB Local, held by a real other process.

A holder that dies before writing its value blocks nobody past its lease (nor anybody past
``LEASE_WAIT_SECONDS``), and once the lease lapses one caller, and only one, goes upstream.
A holder that lives and writes its value spares the waiting callers any call of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.cache.client import make_store
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.interpreter import run_fresh
from tests.support.stack import environment_for

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
KEY = "ticker#binance#BTC/USDT"  # the service's key for /ticker/binance/BTC-USDT
CRASHED = 70  # the holder's exit status when it dies holding the lease

# Another container, in a fresh interpreter: it takes the lease on KEY through the store
# API, as its engine would, for its own LEASE_SECONDS. Then it dies on the spot ("crash"),
# or waits and writes a value for KEY as its refresh would ("write").
HOLDER = """
import asyncio, json, os, sys, time

from market_proxy.cache.client import make_store
from market_proxy.cache.entry import Entry
from market_proxy.settings import Settings


def now_ms():
    return time.time_ns() // 1_000_000


async def main(key, mode, write_after_s, payload):
    settings = Settings.from_env()
    store = make_store(settings)
    now = now_ms()
    until = now + round(settings.lease_seconds * 1000)
    taken, _ = await store.acquire_lease(key, f"holder-{os.getpid()}", until, now)
    print(json.dumps({"taken": taken, "lease_until": until}), flush=True)
    if mode == "crash":
        os._exit(int(sys.argv[5]))  # no value written, nothing released, no clean-up of any kind
    await asyncio.sleep(write_after_s)
    entry = Entry.create(key, json.loads(payload), settings.ticker_policy, now_ms())
    await store.put(entry)
    print(json.dumps({"written": entry.lifetime.fetched_at}), flush=True)


asyncio.run(main(*sys.argv[1:3], float(sys.argv[3]), sys.argv[4]))
"""


@dataclass(frozen=True)
class Lease:
    taken: bool
    until: int  # epoch ms


def holder_environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **environment_for(settings),
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
    }


def first_json_line(text: str) -> dict[str, Any]:
    line = next(line for line in text.splitlines() if line.startswith("{"))
    found: dict[str, Any] = json.loads(line)
    return found


async def crashed_holder(settings: Settings) -> Lease:
    """Run a holder that takes the lease and dies; returns once it is dead."""
    result = await asyncio.to_thread(
        run_fresh,
        HOLDER,
        KEY,
        "crash",
        "0",
        "{}",
        str(CRASHED),
        env=holder_environment(settings),
        cwd=ROOT,
    )
    assert result.returncode == CRASHED, result.stderr[-3000:]
    said = first_json_line(result.stdout)
    return Lease(taken=bool(said["taken"]), until=int(said["lease_until"]))


@asynccontextmanager
async def live_holder(
    settings: Settings, payload: dict[str, Any], write_after_s: float
) -> AsyncIterator[Lease]:
    """A holder that has taken the lease and will write ``payload`` ``write_after_s`` later;
    on leaving, it has exited cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, KEY, "write", str(write_after_s), json.dumps(payload), "0"],
        env=holder_environment(settings),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        assert line.startswith("{"), process.stderr.read() if process.stderr else ""
        said = json.loads(line)
        yield Lease(taken=bool(said["taken"]), until=int(said["lease_until"]))
        rest, errors = await asyncio.to_thread(process.communicate, timeout=30)
        assert process.returncode == 0, errors[-3000:]
        assert "written" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@asynccontextmanager
async def containers(settings: Settings, count: int = 1) -> AsyncIterator[list[MarketData]]:
    """``count`` containers on the shared table, each with Binance's markets loaded."""
    services = [MarketData.from_settings(settings) for _ in range(count)]
    try:
        for service in services:
            await service.load_markets("binance")
        yield services
    finally:
        await asyncio.gather(*(service.close() for service in services))


def ticker_calls_at(sim: ExchangeSim) -> list[float]:
    """When the exchange received each ticker request (epoch seconds)."""
    return [call.at for call in sim.call_log() if call.endpoint == "ticker"]


async def test_a_crashed_holders_lease_delays_a_request_only_until_it_lapses(
    settings: Settings, sim: ExchangeSim
) -> None:
    # (Margins for a busy machine: the lease outlives the holder's exit by far, and the
    # wait outlasts the lease by far.)
    shared = settings.model_copy(update={"lease_seconds": 2.0, "lease_wait_seconds": 5.0})
    async with containers(shared) as (service,):
        # Given another container that took the lease on the ticker and died,
        sim.set_ticker("binance", "BTCUSDT", last=64_321.5)
        lease = await crashed_holder(shared)
        assert lease.taken
        assert lease.until - now_ms() > 300, "the lease is still live when the request comes"
        sim.reset_calls()
        # when a request for that ticker comes in,
        started = time.monotonic()
        answer = await service.ticker("binance", "BTC/USDT")
        elapsed = time.monotonic() - started
        stored = await make_store(shared).get(KEY)
    # then it is answered from the exchange, correctly, soon after the lease lapsed
    # (not at the end of LEASE_WAIT_SECONDS),
    assert answer.freshness.source == "upstream"
    assert answer.data["last"] == 64_321.5
    assert elapsed < shared.lease_wait_seconds - 1.0
    # with one call, made once the dead holder's lease had lapsed,
    calls = ticker_calls_at(sim)
    assert len(calls) == 1
    assert calls[0] * 1000 >= lease.until
    # and the table holds the new value, with the lease gone.
    assert stored is not None
    assert stored.entry is not None
    assert stored.entry.payload["last"] == 64_321.5
    assert stored.lease_owner is None


async def test_behind_a_long_lease_of_a_crashed_holder_a_request_waits_only_lease_wait_seconds(
    settings: Settings, sim: ExchangeSim
) -> None:
    shared = settings.model_copy(update={"lease_seconds": 10.0, "lease_wait_seconds": 0.5})
    async with containers(shared) as (service,):
        # Given another container that took a ten-second lease on the ticker and died,
        sim.set_ticker("binance", "BTCUSDT", last=64_400.25)
        lease = await crashed_holder(shared)
        assert lease.taken
        sim.reset_calls()
        # when a request for that ticker comes in,
        started = time.monotonic()
        answer = await service.ticker("binance", "BTC/USDT")
        elapsed = time.monotonic() - started
    # then it waits LEASE_WAIT_SECONDS for the holder's value, no more, then asks the
    # exchange itself, once, while the dead holder's lease still stands.
    assert shared.lease_wait_seconds <= elapsed < shared.lease_wait_seconds + 1.5
    assert answer.freshness.source == "upstream"
    assert answer.data["last"] == 64_400.25
    calls = ticker_calls_at(sim)
    assert len(calls) == 1
    assert calls[0] * 1000 < lease.until


async def test_once_a_crashed_holders_lease_lapses_one_waiting_container_alone_calls_upstream(
    settings: Settings, sim: ExchangeSim
) -> None:
    shared = settings.model_copy(update={"lease_seconds": 1.0, "lease_wait_seconds": 3.0})
    async with containers(shared, count=3) as services:
        # Given another container that took the lease on the ticker and died,
        sim.set_ticker("binance", "BTCUSDT", last=64_500.75)
        lease = await crashed_holder(shared)
        assert lease.taken
        sim.reset_calls()
        # when three containers get ten requests each for that ticker meanwhile,
        answers = await asyncio.gather(
            *(service.ticker("binance", "BTC/USDT") for service in services for _ in range(10))
        )
    # then, once the lease has lapsed, one container takes it and calls the exchange once,
    calls = ticker_calls_at(sim)
    assert len(calls) == 1
    assert calls[0] * 1000 >= lease.until
    # its requests share that call, the others read its value from the table,
    per_container = [{a.freshness.source for a in answers[i : i + 10]} for i in range(0, 30, 10)]
    assert sorted(",".join(sorted(sources)) for sources in per_container) == [
        "l2",
        "l2",
        "upstream",
    ]
    # and every answer is the exchange's ticker.
    assert {answer.data["last"] for answer in answers} == {64_500.75}


async def test_while_a_live_holder_refreshes_a_waiting_request_answers_from_l2_without_a_call(
    settings: Settings, sim: ExchangeSim
) -> None:
    shared = settings.model_copy(update={"lease_seconds": 5.0, "lease_wait_seconds": 3.0})
    # The holder's value differs from the exchange's, so whose value is served is plain.
    sim.set_ticker("binance", "BTCUSDT", last=64_000.0)
    written = {"exchange": "binance", "symbol": "BTC/USDT", "market_id": "BTCUSDT", "last": 1.5}
    # Given another container, alive, that holds the lease and writes its value 0.8 s on,
    async with (
        containers(shared) as (service,),
        live_holder(shared, written, write_after_s=0.8) as lease,
    ):
        assert lease.taken
        sim.reset_calls()
        # when a request for that ticker comes in meanwhile,
        started = time.monotonic()
        answer = await service.ticker("binance", "BTC/USDT")
        elapsed = time.monotonic() - started
    # then it waits for the holder's value and answers with it, from the table,
    assert answer.freshness.source == "l2"
    assert answer.data == written
    assert 0.5 < elapsed < shared.lease_wait_seconds
    # without a call of its own to the exchange.
    assert sim.calls("binance", "ticker") == 0
