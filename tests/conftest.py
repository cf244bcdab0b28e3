"""Settings every test session needs (no real AWS, quiet Powertools) and the shared stack."""

from __future__ import annotations

import os

# Before anything imports boto3 or Powertools.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "market-data-proxy",
        "POWERTOOLS_METRICS_NAMESPACE": "MarketDataProxyTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_PROFILE", None)

from collections.abc import Iterator

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.settings import Settings
from tests.support.stack import drop_table, new_table, settings_for


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """AWS's DynamoDB Local, once per session, on a free loopback port."""
    with DynamoDBLocal() as engine:
        yield engine


@pytest.fixture(scope="session")
def exchange_sim_session() -> Iterator[ExchangeSim]:
    with ExchangeSim() as sim:
        yield sim


def _reset(sim: ExchangeSim) -> None:
    sim.reset_calls()
    sim.clear_faults()
    sim.set_clock(None)
    sim.set_latency(0.0)
    sim.limits.clear()
    sim.reset_history()


@pytest.fixture
def sim(exchange_sim_session: ExchangeSim) -> Iterator[ExchangeSim]:
    """The loopback exchange, with calls, faults and clock reset for each test, and again
    after it: a module's fixtures, set up before any test's, find it as new."""
    _reset(exchange_sim_session)
    yield exchange_sim_session
    _reset(exchange_sim_session)


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal) -> Iterator[str]:
    name = new_table(dynamodb_local.endpoint)
    yield name
    drop_table(dynamodb_local.endpoint, name)


@pytest.fixture
def settings(dynamodb_local: DynamoDBLocal, table: str, sim: ExchangeSim) -> Settings:
    return settings_for(dynamodb_local.endpoint, table, sim)
