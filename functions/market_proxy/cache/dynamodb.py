"""The DynamoDB adapter of the cache port (and of the demand tally's).

Items are encoded by ``codec.py``. boto3's client is synchronous: calls run on worker threads
so a stream server's event loop keeps serving other clients meanwhile; a container serving
one request at a time may call on the loop's thread instead (``DYNAMODB_CALLS_ON_LOOP``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from market_proxy.cache import codec
from market_proxy.cache.budget_items import BudgetItems
from market_proxy.cache.codec import TTL_ATTRIBUTE, Item, expires_at
from market_proxy.cache.entry import CachedError, Entry, StoredItem
from market_proxy.cache.store import CacheUnavailable, ConditionFailed, fanned_out

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
RETRIES = 3
# Errors about one request (its item, its expression), not about the table: the next request
# may well succeed. Any other error means the table is unusable for now.
REQUEST_ERRORS = frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"})
COUNT_PREFIX = "n:"


class DynamoDBStore(BudgetItems):
    """The cache port on a DynamoDB table.

    ``on_loop``: call DynamoDB on the event loop's own thread instead of a worker thread.
    Only for a process that serves one request at a time (a Lambda container under Mangum),
    where nothing else could run meanwhile and the hop to a thread is pure cost; but not
    while that request is :func:`fanning_out`.
    """

    def __init__(self, client: DynamoDBClient, table_name: str, *, on_loop: bool = False) -> None:
        self._client = client
        self._table = table_name
        self._on_loop = on_loop

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
        wanted = [key for item in items.values() for key in codec.part_keys(item)]
        parts = await self._batch_get(wanted) if wanted else {}
        return {key: codec.decode(key, item, parts) for key, item in items.items()}

    # -- writes ------------------------------------------------------------------------

    async def put(self, entry: Entry) -> None:
        item, parts = codec.encode(entry)
        if parts:
            await self._batch_write(parts)
        # A failed condition means a newer entry is already stored: keep it.
        with contextlib.suppress(ConditionFailed):
            await self._call(
                "put_item",
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(fetched_at) OR fetched_at < :fa",
                ExpressionAttributeValues={":fa": {"N": str(entry.lifetime.fetched_at)}},
            )

    async def put_many(self, entries: Sequence[Entry]) -> None:
        items: list[Item] = []
        for entry in entries:
            item, parts = codec.encode(entry)
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
                    ":expires": expires_at(until_ms),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
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
            ":expires": expires_at(error.until),
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
        with contextlib.suppress(ConditionFailed):
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
        with contextlib.suppress(ConditionFailed):
            await self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )

    # -- tallies (the demand port) -----------------------------------------------------

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
        """Run one boto3 operation, on a worker thread unless ``on_loop``, with errors in the
        port's terms."""
        call = functools.partial(getattr(self._client, operation), **request)
        try:
            if self._on_loop and not fanned_out():
                response: dict[str, Any] = call()
            else:
                response = await asyncio.to_thread(call)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                raise ConditionFailed(old) from None
            code = str(error.get("Code", type(exc).__name__))
            raise CacheUnavailable(operation, code, store_wide=code not in REQUEST_ERRORS) from exc
        except BotoCoreError as exc:
            raise CacheUnavailable(operation, type(exc).__name__) from exc
        return response

    def disconnect(self) -> None:
        """Close every open connection to the table (before a SnapStart snapshot); the next
        call opens new ones."""
        self._client.close()
