"""The DynamoDB adapter of the cache port.

One item per key. Payloads are JSON, compressed past a small size; a payload that would
still not fit under DynamoDB's 400 KB item limit is split into parts stored under keys named
after its ETag, so a reader can never mix the parts of two versions. ``expires_at`` (epoch
seconds) is the table's TTL attribute: DynamoDB's garbage collection, never a freshness test.

Reads go on the wire directly (``direct.py``: the hot path of every L2 hit) unless
``DYNAMODB_DIRECT_READS`` is off; writes go through boto3. Both are synchronous; calls run on
worker threads so a stream server's event loop keeps serving other clients meanwhile (a
container serving one request at a time may call on the loop's thread instead:
``DYNAMODB_CALLS_ON_LOOP``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from market_proxy.cache.direct import OPERATIONS as DIRECT_OPERATIONS
from market_proxy.cache.direct import DirectError, DirectReads
from market_proxy.cache.entry import (
    CachedError,
    Entry,
    StoredItem,
    decode_json,
    digest,
    encode_json,
)
from market_proxy.cache.store import CacheUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from market_proxy.settings import Settings

# Items in DynamoDB's attribute-value form, as the low-level client speaks it.
Item = dict[str, Any]

COMPRESS_ABOVE = 1024
PART_SIZE = 350_000  # well under the 400 KB item limit, leaving room for the other attributes
GRACE_S = 60
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
RETRIES = 3
# Errors about one request (its item, its expression), not about the table: the next request
# may well succeed. Any other error means the table is unusable for now.
REQUEST_ERRORS = frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"})
TTL_ATTRIBUTE = "expires_at"  # template.yaml's TimeToLiveSpecification names the same
COUNT_PREFIX = "n:"


def make_store(settings: Settings) -> DynamoDBStore:
    """The store on ``TABLE_NAME``, as configured: boto3 for writes and, unless
    ``DYNAMODB_DIRECT_READS`` is off, direct reads signed with the same credentials."""
    client, credentials, ca_bundle = _client_and_credentials(settings)
    endpoint = client.meta.endpoint_url
    direct = None
    # Where botocore would go through an HTTP proxy, reads must too: they stay with boto3.
    if settings.dynamodb_direct_reads and credentials is not None and not _proxied(endpoint):
        direct = DirectReads(
            endpoint,
            client.meta.region_name,
            credentials,
            timeout_s=settings.dynamodb_timeout_s,
            ca_bundle=ca_bundle,
        )
    return DynamoDBStore(
        client, settings.table_name, on_loop=settings.dynamodb_calls_on_loop, direct=direct
    )


def make_client(settings: Settings) -> DynamoDBClient:
    """A DynamoDB client that fails fast: the cache must never hold a request hostage.

    Two attempts in all (botocore's standard mode: it retries throttling after a jittered
    back-off of up to 1 s, connection errors and 5xx after up to 25 ms, and never a
    denial or a validation error). So one call that fails costs at most two attempts of
    ``DYNAMODB_TIMEOUT_S`` to connect and as much to read, plus that back-off: 5 s at the
    default timeout against an endpoint that hangs; under 1.1 s when it refuses or
    throttles; one round trip when it denies. After a failure of the whole table the engine
    leaves it alone for ``CACHE_STORE_BACKOFF_SECONDS``, so a request pays this once at most.
    """
    return _client_and_credentials(settings)[0]


def _client_and_credentials(
    settings: Settings,
) -> tuple[DynamoDBClient, Credentials | None, str | None]:
    """The client, the credentials object it signs with, and the CA bundle it trusts."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    session = boto3.session.Session(botocore_session=core, region_name=settings.aws_region)
    # The session's own credentials object: refreshed where the chain refreshes them, and
    # shared by the client and the direct reads.
    credentials = session.get_credentials()
    key_id = secret = None
    if settings.dynamodb_endpoint_url and credentials is None:
        # A local DynamoDB accepts any key; AWS tooling still insists there is one.
        key_id = secret = "local"  # noqa: S105 - a local engine's dummy key  # nosec B105
        credentials = Credentials(key_id, secret)
    config = Config(
        connect_timeout=settings.dynamodb_timeout_s,
        read_timeout=settings.dynamodb_timeout_s,
        retries={"total_max_attempts": 2, "mode": "standard"},
        max_pool_connections=32,
        # The regional endpoint, which the direct reads use too, rather than one per account.
        account_id_endpoint_mode="disabled",
    )
    client = session.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint_url,
        config=config,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    ca_bundle = core.get_config_variable("ca_bundle")
    return client, credentials, ca_bundle if isinstance(ca_bundle, str) else None


def _proxied(endpoint: str) -> bool:
    from botocore.utils import get_environ_proxies

    return bool(get_environ_proxies(endpoint))


class DynamoDBStore:
    """The cache port on a DynamoDB table.

    ``on_loop``: call DynamoDB on the event loop's own thread instead of a worker thread.
    Only for a process that serves one request at a time (a Lambda container under Mangum),
    where nothing else could run meanwhile and the hop to a thread is pure cost.
    ``direct``: where reads go instead of ``client``.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        on_loop: bool = False,
        direct: DirectReads | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._on_loop = on_loop
        self._direct = direct

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str, *, consistent: bool = False) -> StoredItem | None:
        response = await self._call(
            "get_item", TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=consistent
        )
        item = response.get("Item")
        if item is None:
            return None
        return (await self._decode_all({key: item}))[key]

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredItem]:
        items = await self._batch_get(list(dict.fromkeys(keys)))
        return await self._decode_all(items)

    async def _batch_get(self, keys: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: list[Item] = [
                {"pk": {"S": key}} for key in keys[start : start + BATCH_GET_MAX]
            ]
            for _ in range(RETRIES):
                if not pending:
                    break
                response = await self._call(
                    "batch_get_item", RequestItems={self._table: {"Keys": pending}}
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item["pk"]["S"]] = item
                pending = list(
                    response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                )
            if pending:
                raise CacheUnavailable("BatchGetItem", f"{len(pending)} keys left unprocessed")
        return found

    async def _decode_all(self, items: dict[str, Item]) -> dict[str, StoredItem]:
        part_keys = [
            part for item in items.values() if "parts" in item for part in _part_keys(item)
        ]
        parts = await self._batch_get(part_keys) if part_keys else {}
        decoded = {}
        for key, item in items.items():
            decoded[key] = _decode(key, item, parts)
        return decoded

    # -- writes ------------------------------------------------------------------------

    async def put(self, entry: Entry) -> None:
        item, parts = _encode(entry)
        if parts:
            await self._batch_write(parts)
        # A failed condition means a newer entry is already stored: keep it.
        with contextlib.suppress(_ConditionFailed):
            await self._call(
                "put_item",
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(fetched_at) OR fetched_at < :fa",
                ExpressionAttributeValues={":fa": {"N": str(entry.fetched_at)}},
            )

    async def put_many(self, entries: Sequence[Entry]) -> None:
        items: list[Item] = []
        for entry in entries:
            item, parts = _encode(entry)
            items.extend(parts)
            items.append(item)
        await self._batch_write(items)

    async def _batch_write(self, items: list[Item]) -> None:
        for start in range(0, len(items), BATCH_WRITE_MAX):
            pending: list[Item] = [
                {"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_MAX]
            ]
            for _ in range(RETRIES):
                if not pending:
                    break
                response = await self._call("batch_write_item", RequestItems={self._table: pending})
                pending = list(response.get("UnprocessedItems", {}).get(self._table, []))
            if pending:
                raise CacheUnavailable("BatchWriteItem", f"{len(pending)} items left unprocessed")

    async def acquire_lease(
        self, key: str, owner: str, until_ms: int, now_ms: int, *, fresh_before: int | None = None
    ) -> tuple[bool, StoredItem | None]:
        try:
            await self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression=(
                    "SET lease_owner = :owner, lease_until = :until, "
                    f"{TTL_ATTRIBUTE} = if_not_exists({TTL_ATTRIBUTE}, :expires)"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(lease_until) OR lease_until < :now) AND "
                    "(attribute_not_exists(fresh_until) OR fresh_until <= :fresh_before)"
                ),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(until_ms)},
                    ":now": {"N": str(now_ms)},
                    ":fresh_before": {"N": str(now_ms if fresh_before is None else fresh_before)},
                    ":expires": {"N": str(until_ms // 1000 + GRACE_S)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            if failed.item is None:
                return False, await self.get(key, consistent=True)
            return False, (await self._decode_all({key: failed.item}))[key]
        return True, None

    async def record_error(self, key: str, owner: str, error: CachedError) -> None:
        values: Item = {
            ":code": {"S": error.code},
            ":detail": {"S": error.detail[:1000]},
            ":until": {"N": str(error.until)},
            ":owner": {"S": owner},
            ":expires": {"N": str(error.until // 1000 + GRACE_S)},
        }
        update = (
            "SET error_code = :code, error_detail = :detail, error_until = :until, "
            f"{TTL_ATTRIBUTE} = if_not_exists({TTL_ATTRIBUTE}, :expires)"
        )
        if error.retry_after is not None:
            update += ", retry_after = :retry"
            values[":retry"] = {"N": str(error.retry_after)}
        # A failed condition means someone else holds the lease now; their outcome will
        # speak for the key.
        with contextlib.suppress(_ConditionFailed):
            await self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression=update + " REMOVE lease_owner, lease_until",
                ConditionExpression="attribute_not_exists(lease_owner) OR lease_owner = :owner",
                ExpressionAttributeValues=values,
            )

    async def release_lease(self, key: str, owner: str) -> None:
        # A failed condition means the lease has lapsed and is someone else's, or gone.
        with contextlib.suppress(_ConditionFailed):
            await self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )

    async def add_counts(self, key: str, counts: dict[str, int], expires_at_s: int) -> None:
        # ADD works on top-level attributes only, so each tally is an attribute of its own.
        names = {f"#c{i}": f"{COUNT_PREFIX}{name}" for i, name in enumerate(counts)}
        values: Item = {f":c{i}": {"N": str(n)} for i, n in enumerate(counts.values())}
        values[":expires"] = {"N": str(expires_at_s)}
        adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        await self._call(
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": key}},
            UpdateExpression=f"ADD {adds} SET {TTL_ATTRIBUTE} = :expires",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    async def get_counts(self, keys: Sequence[str]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for item in (await self._batch_get(list(dict.fromkeys(keys)))).values():
            for name, value in item.items():
                if name.startswith(COUNT_PREFIX):
                    counted = name[len(COUNT_PREFIX) :]
                    totals[counted] = totals.get(counted, 0) + int(value["N"])
        return totals

    async def ping(self) -> None:
        await self._call("describe_table", TableName=self._table)

    # -- plumbing ----------------------------------------------------------------------

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """Run one operation (a boto3 method name; reads go direct where they may), on a
        worker thread unless ``on_loop``, with errors in the port's terms."""
        direct = self._direct
        call: Callable[[], dict[str, Any]]
        if direct is not None and operation in DIRECT_OPERATIONS:
            call = functools.partial(direct.call, operation, request)
        else:
            call = functools.partial(getattr(self._client, operation), **request)
        try:
            if self._on_loop:
                return call()
            return await asyncio.to_thread(call)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                raise _ConditionFailed(old) from None
            code = str(error.get("Code", type(exc).__name__))
            raise CacheUnavailable(operation, code, store_wide=code not in REQUEST_ERRORS) from exc
        except DirectError as exc:
            raise CacheUnavailable(
                operation, exc.code, store_wide=exc.code not in REQUEST_ERRORS
            ) from exc
        except BotoCoreError as exc:
            raise CacheUnavailable(operation, type(exc).__name__) from exc

    def disconnect(self) -> None:
        """Close every open connection to the table (before a SnapStart snapshot); the next
        call opens new ones."""
        self._client.close()
        if self._direct is not None:
            self._direct.close()


class _ConditionFailed(Exception):
    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


def _encode(entry: Entry) -> tuple[Item, list[Item]]:
    body = encode_json(entry.payload)
    item: Item = {
        "pk": {"S": entry.key},
        "fetched_at": {"N": str(entry.fetched_at)},
        "fresh_until": {"N": str(entry.fresh_until)},
        "swr_until": {"N": str(entry.swr_until)},
        "sie_until": {"N": str(entry.sie_until)},
        "etag": {"S": entry.etag},
        "size": {"N": str(entry.size)},
        TTL_ATTRIBUTE: {"N": str(entry.keep_until // 1000 + GRACE_S)},
    }
    parts: list[Item] = []
    if len(body) <= COMPRESS_ABOVE:
        item["payload"] = {"S": body.decode()}
        return item, parts
    packed = zlib.compress(body, 6)
    if len(packed) <= PART_SIZE:
        item["payload_z"] = {"B": packed}
        return item, parts
    chunks = [packed[i : i + PART_SIZE] for i in range(0, len(packed), PART_SIZE)]
    item["parts"] = {"N": str(len(chunks))}
    for index, chunk in enumerate(chunks):
        parts.append(
            {
                "pk": {"S": _part_key(entry.key, entry.etag, index)},
                "chunk": {"B": chunk},
                TTL_ATTRIBUTE: item[TTL_ATTRIBUTE],
            }
        )
    return item, parts


def _part_key(key: str, etag: str, index: int) -> str:
    return f"{key}#part#{etag}#{index}"


def _part_keys(item: Item) -> Iterator[str]:
    for index in range(int(item["parts"]["N"])):
        yield _part_key(item["pk"]["S"], item["etag"]["S"], index)


def _decode(key: str, item: Item, parts: dict[str, Item]) -> StoredItem:
    raw = item
    entry = None
    if "fetched_at" in raw:
        body = _payload_bytes(raw, parts)
        if body is not None:
            entry = Entry(
                key=key,
                payload=decode_json(body),
                fetched_at=int(raw["fetched_at"]["N"]),
                fresh_until=int(raw["fresh_until"]["N"]),
                swr_until=int(raw["swr_until"]["N"]),
                sie_until=int(raw["sie_until"]["N"]),
                etag=raw["etag"]["S"],
                size=int(raw["size"]["N"]),
            )
    error = None
    if "error_code" in raw:
        error = CachedError(
            code=raw["error_code"]["S"],
            detail=raw.get("error_detail", {}).get("S", ""),
            until=int(raw["error_until"]["N"]),
            retry_after=float(raw["retry_after"]["N"]) if "retry_after" in raw else None,
        )
    return StoredItem(
        entry=entry,
        lease_owner=raw.get("lease_owner", {}).get("S"),
        lease_until=int(raw.get("lease_until", {}).get("N", 0)),
        error=error,
    )


def _payload_bytes(raw: dict[str, Any], parts: dict[str, Item]) -> bytes | None:
    """The payload's JSON, or None when it is missing or torn (then the item is a miss)."""
    if "payload" in raw:
        return str(raw["payload"]["S"]).encode()
    if "payload_z" in raw:
        return zlib.decompress(raw["payload_z"]["B"])
    if "parts" not in raw:
        return None
    chunks = []
    for part_key in _part_keys(raw):
        part = parts.get(part_key)
        if part is None:
            return None
        chunks.append(part["chunk"]["B"])
    body = zlib.decompress(b"".join(chunks))
    if digest(body) != raw["etag"]["S"]:
        return None
    return body
