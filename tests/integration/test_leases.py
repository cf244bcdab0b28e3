"""Leases race for real on DynamoDB Local, whose conditional writes are atomic as AWS's are
(moto's are not across threads, so these tests live here rather than with the unit tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from infra.local.dynamodb import DynamoDBLocal, local_client
from market_proxy.cache.dynamodb import DynamoDBStore
from market_proxy.keys import Kind, MarketKey
from market_proxy.settings import DataPolicy
from tests.support.engine import read_through

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
POLICY = DataPolicy(fresh_s=2, swr_s=10, sie_s=60)


async def test_concurrent_misses_in_several_containers_make_one_upstream_call(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    calls = 0

    async def upstream() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return {"last": 1.0}

    store = DynamoDBStore(local_client(dynamodb_local.endpoint), table)  # type: ignore[arg-type]
    containers = [read_through(store) for _ in range(4)]
    key = MarketKey(Kind.TICKER, "binance", "BTC/USDT")
    answers = await asyncio.gather(
        *(c.get(key, POLICY, upstream) for c in containers for _ in range(25))
    )
    assert calls == 1
    assert {a.source for a in answers} == {"upstream", "l2"}
