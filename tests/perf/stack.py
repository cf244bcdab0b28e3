"""What every benchmark runs against: DynamoDB Local and the loopback exchange, started once
per ``make bench``, with a fresh table per benchmark and functions started as Lambda does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.deployed import deployed_settings
from tests.support.lambda_module import cold_starts
from tests.support.stack import drop_table, new_table


@dataclass(frozen=True, slots=True)
class Stack:
    dynamodb: DynamoDBLocal
    sim: ExchangeSim

    @contextlib.contextmanager
    def table(self) -> Iterator[str]:
        """A fresh cache table, as template.yaml defines it, dropped afterwards."""
        name = new_table(self.dynamodb.endpoint)
        try:
            yield name
        finally:
            drop_table(self.dynamodb.endpoint, name)

    def settings(self, function: str, table: str, **overrides: Any) -> Settings:
        """What ``function`` (a template.yaml logical id) reads when deployed, on this stack."""
        return deployed_settings(function, self.dynamodb.endpoint, table, self.sim, **overrides)

    @contextlib.contextmanager
    def deployed(self, function: str, **overrides: Any) -> Iterator[Settings]:
        """:meth:`settings` on a fresh table, with the exchange's counts reset."""
        with self.table() as table:
            self.reset_exchange()
            yield self.settings(function, table, **overrides)

    def reset_exchange(self) -> None:
        """No calls counted, no faults, no added latency, the real clock."""
        self.sim.reset_calls()
        self.sim.clear_faults()
        self.sim.set_clock(None)
        self.sim.set_latency(0.0)
        self.sim.limits.clear()


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with DynamoDBLocal() as dynamodb, ExchangeSim() as sim:
        yield Stack(dynamodb, sim)


@contextlib.contextmanager
def cold_start(module_name: str, settings: Settings) -> Iterator[ModuleType]:
    """Import a Lambda entry module as a cold start does, ``settings`` as its environment;
    afterwards close what it opened and restore the environment."""
    # The module's service is closed on the current event loop (api_handler sets its own).
    own = asyncio.new_event_loop()
    asyncio.set_event_loop(own)
    try:
        # What init built stays frozen out of the cycle collector's sight, as in a container.
        with pytest.MonkeyPatch.context() as patch, cold_starts(patch, keep_frozen=True) as start:
            yield start(module_name, settings)
    finally:
        for loop in {own, asyncio.get_event_loop()}:
            loop.close()
        asyncio.set_event_loop(None)


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def invoke(
    handler: Handler, path: str, *, tier: str, query: dict[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    """One GET through a Lambda handler, fed a new API Gateway event: the seconds the handler
    took and its response, checked to be a 200 answered from ``tier`` (its X-Cache)."""
    event, context = rest_event(path, query=query), LambdaContext()
    started = time.perf_counter()
    response = handler(event, context)
    elapsed = time.perf_counter() - started
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    if response["statusCode"] != 200 or headers.get("x-cache") != tier:
        raise RuntimeError(
            f"{path}: expected a 200 from {tier}, got {response['statusCode']} "
            f"from {headers.get('x-cache')}: {str(response.get('body'))[:300]}"
        )
    return elapsed, response
