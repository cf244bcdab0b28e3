"""Entries as DynamoDB items, in the attribute-value form the low-level client speaks.

One item per key. Payloads are JSON, compressed past a small size; a payload that would
still not fit under DynamoDB's 400 KB item limit is split into parts stored under keys named
after its ETag, so a reader can never mix the parts of two versions. ``expires_at`` (epoch
seconds) is the table's TTL attribute: DynamoDB's garbage collection, never a freshness test.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from market_proxy.cache.entry import (
    CachedError,
    Entry,
    Lifetime,
    StoredItem,
    decode_json,
    digest,
    encode_json,
)
from market_proxy.keys import part_key

Item = dict[str, Any]

COMPRESS_ABOVE = 1024
PART_SIZE = 350_000  # well under the 400 KB item limit, leaving room for the other attributes
GRACE_S = 60
TTL_ATTRIBUTE = "expires_at"  # template.yaml's TimeToLiveSpecification names the same


def expires_at(until_ms: int) -> dict[str, str]:
    """The TTL attribute's value for something useless after ``until_ms``."""
    return {"N": str(until_ms // 1000 + GRACE_S)}


def encode(entry: Entry) -> tuple[Item, list[Item]]:
    """The item for ``entry`` and, for a payload too large for one item, its parts."""
    body = encode_json(entry.payload)
    life = entry.lifetime
    item: Item = {
        "pk": {"S": entry.key},
        "fetched_at": {"N": str(life.fetched_at)},
        "fresh_until": {"N": str(life.fresh_until)},
        "swr_until": {"N": str(life.swr_until)},
        "sie_until": {"N": str(life.sie_until)},
        "etag": {"S": entry.etag},
        "size": {"N": str(entry.size)},
        TTL_ATTRIBUTE: expires_at(life.keep_until),
    }
    if len(body) <= COMPRESS_ABOVE:
        item["payload"] = {"S": body.decode()}
        return item, []
    packed = zlib.compress(body, 6)
    if len(packed) <= PART_SIZE:
        item["payload_z"] = {"B": packed}
        return item, []
    chunks = [packed[i : i + PART_SIZE] for i in range(0, len(packed), PART_SIZE)]
    item["parts"] = {"N": str(len(chunks))}
    parts = [
        {
            "pk": {"S": part_key(entry.key, entry.etag, index)},
            "chunk": {"B": chunk},
            TTL_ATTRIBUTE: item[TTL_ATTRIBUTE],
        }
        for index, chunk in enumerate(chunks)
    ]
    return item, parts


def part_keys(item: Item) -> Iterator[str]:
    """The keys of the parts an item's payload was split into (none for most items)."""
    if "parts" not in item:
        return
    for index in range(int(item["parts"]["N"])):
        yield part_key(item["pk"]["S"], item["etag"]["S"], index)


def decode(key: str, item: Item, parts: dict[str, Item]) -> StoredItem:
    """What ``item`` holds; an entry whose payload is missing or torn is left out (a miss)."""
    entry = None
    if "fetched_at" in item:
        body = _payload_bytes(item, parts)
        if body is not None:
            entry = Entry(
                key=key,
                payload=decode_json(body),
                lifetime=Lifetime(
                    fetched_at=int(item["fetched_at"]["N"]),
                    fresh_until=int(item["fresh_until"]["N"]),
                    swr_until=int(item["swr_until"]["N"]),
                    sie_until=int(item["sie_until"]["N"]),
                ),
                etag=item["etag"]["S"],
                size=int(item["size"]["N"]),
            )
    error = None
    if "error_code" in item:
        error = CachedError(
            code=item["error_code"]["S"],
            detail=item.get("error_detail", {}).get("S", ""),
            until=int(item["error_until"]["N"]),
            retry_after=float(item["retry_after"]["N"]) if "retry_after" in item else None,
        )
    return StoredItem(
        entry=entry,
        lease_owner=item.get("lease_owner", {}).get("S"),
        lease_until=int(item.get("lease_until", {}).get("N", 0)),
        error=error,
    )


def _payload_bytes(item: Item, parts: dict[str, Item]) -> bytes | None:
    if "payload" in item:
        return str(item["payload"]["S"]).encode()
    if "payload_z" in item:
        return zlib.decompress(item["payload_z"]["B"])
    if "parts" not in item:
        return None
    chunks = []
    for key in part_keys(item):
        part = parts.get(key)
        if part is None:
            return None
        chunks.append(part["chunk"]["B"])
    body = zlib.decompress(b"".join(chunks))
    if digest(body) != item["etag"]["S"]:
        return None
    return body
