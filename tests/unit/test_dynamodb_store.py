"""The DynamoDB adapter: item layout, the 400 KB limit, torn writes, newer-wins."""

from __future__ import annotations

import random
from typing import Any

import pytest

from market_proxy.cache.codec import PART_SIZE
from market_proxy.cache.dynamodb import DynamoDBStore
from market_proxy.cache.entry import Entry, encode_json
from market_proxy.cache.store import CacheUnavailable
from market_proxy.clock import now_ms
from market_proxy.settings import DataPolicy

pytestmark = pytest.mark.anyio
POLICY = DataPolicy(fresh_s=60)
ITEM_LIMIT = 400 * 1024


def incompressible(size: int) -> list[str]:
    rng = random.Random(7)
    return [f"{rng.getrandbits(64):016x}" for _ in range(size // 19)]


def raw_items(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName="cache-test")["Items"]
    return items


def item_size(item: dict[str, Any]) -> int:
    size = 0
    for name, value in item.items():
        ((kind, content),) = value.items()
        size += len(name) + (len(content) if kind in ("S", "B") else 21)
    return size


async def test_a_small_payload_round_trips_as_plain_json(
    store: DynamoDBStore, dynamodb: Any
) -> None:
    entry = Entry.create("ticker#x#A/B", {"last": 1.5}, POLICY, now_ms())
    await store.put(entry)
    assert (await store.get(entry.key)).entry == entry  # type: ignore[union-attr]
    (item,) = raw_items(dynamodb)
    assert item["payload"]["S"] == '{"last":1.5}'
    assert int(item["expires_at"]["N"]) >= entry.lifetime.keep_until // 1000


async def test_a_payload_over_the_item_limit_is_split_and_every_item_fits(
    store: DynamoDBStore, dynamodb: Any
) -> None:
    payload = incompressible(3 * PART_SIZE)
    entry = Entry.create("markets#binance", payload, POLICY, now_ms())
    assert entry.size > ITEM_LIMIT
    await store.put(entry)
    stored = await store.get(entry.key)
    assert stored is not None
    assert stored.entry is not None
    assert stored.entry.payload == payload
    items = raw_items(dynamodb)
    assert len(items) > 2
    assert max(item_size(item) for item in items) < ITEM_LIMIT


async def test_a_torn_split_payload_reads_as_a_miss_not_as_garbage(
    store: DynamoDBStore, dynamodb: Any
) -> None:
    entry = Entry.create("markets#binance", incompressible(2 * PART_SIZE), POLICY, now_ms())
    await store.put(entry)
    part = next(i for i in raw_items(dynamodb) if "#part#" in i["pk"]["S"])
    dynamodb.delete_item(TableName="cache-test", Key={"pk": part["pk"]})
    stored = await store.get(entry.key)
    assert stored is not None
    assert stored.entry is None


async def test_an_older_write_never_replaces_a_newer_entry(store: DynamoDBStore) -> None:
    now = now_ms()
    newer = Entry.create("k", {"v": "new"}, POLICY, now)
    older = Entry.create("k", {"v": "old"}, POLICY, now - 1000)
    await store.put(newer)
    await store.put(older)
    assert (await store.get("k")).entry.payload == {"v": "new"}  # type: ignore[union-attr]


async def test_batch_reads_and_writes_cover_more_keys_than_one_call_takes(
    store: DynamoDBStore,
) -> None:
    now = now_ms()
    entries = [Entry.create(f"k{i}", {"i": i, "pad": "x" * 2000}, POLICY, now) for i in range(130)]
    await store.put_many(entries)
    found = await store.get_many([e.key for e in entries] + ["absent"])
    assert len(found) == 130
    assert found["k129"].entry.payload["i"] == 129  # type: ignore[union-attr]


async def test_a_lease_is_refused_while_held_and_while_the_entry_is_fresh(
    store: DynamoDBStore,
) -> None:
    now = now_ms()
    assert (await store.acquire_lease("k", "a", now + 5000, now))[0]
    taken, current = await store.acquire_lease("k", "b", now + 5000, now)
    assert not taken
    assert current is not None
    assert current.lease_owner == "a"
    assert (await store.acquire_lease("k", "b", now + 9000, now + 5001))[0]
    await store.put(Entry.create("k", {"v": 1}, POLICY, now + 5002))
    taken, current = await store.acquire_lease("k", "c", now + 9000, now + 5003)
    assert not taken
    assert current is not None
    assert current.entry is not None
    assert current.lease_owner is None


def test_encoding_is_compact_json() -> None:
    assert encode_json({"a": [1, 2.5]}) == b'{"a":[1,2.5]}'


async def test_calling_on_the_loops_thread_stores_reads_and_refuses_alike(dynamodb: Any) -> None:
    store = DynamoDBStore(dynamodb, "cache-test", on_loop=True)
    entry = Entry.create("ticker#x#A/B", {"last": 2.5}, POLICY, now_ms())
    await store.put(entry)
    assert (await store.get(entry.key)).entry == entry  # type: ignore[union-attr]

    missing = DynamoDBStore(dynamodb, "no-such-table", on_loop=True)
    with pytest.raises(CacheUnavailable) as refused:
        await missing.get(entry.key)
    assert refused.value.reason == "ResourceNotFoundException"
