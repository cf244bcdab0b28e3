"""The fleet's upstream budget on the cache table (the budget port's DynamoDB side): one item
per exchange holding the current window's use and any pause; see :mod:`market_proxy.budget`."""

from __future__ import annotations

import contextlib
from typing import Any

from market_proxy.budget import Granted, carried, room_for
from market_proxy.cache.codec import expires_at
from market_proxy.cache.store import ConditionFailed

_BUDGET_KEEP_MS = 86_400_000  # a budget item outlives its last use by a day, then goes


class BudgetItems:
    """The budget port's operations, for :class:`DynamoDBStore` (its table and its calls)."""

    _table: str

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def take_units(
        self, key: str, window: int, units: float, ceiling: float, now_ms: int, *, least: float
    ) -> Granted:
        """Units of the current window's budget, with one conditional write (two when the
        window is new, three when only a remainder is left); see :mod:`market_proxy.budget`."""
        # The condition: the window holds no more than leaves room for what is asked, or (a
        # request overdrawing what is left) no more than was seen left when it was asked.
        wanted = least if least > ceiling else units
        most_used = max(0.0, ceiling - wanted)
        for _ in range(4):
            try:
                updated = await self._call(
                    "update_item",
                    TableName=self._table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="ADD #used :u SET expires_at = :expires",
                    ConditionExpression=(
                        "#w = :w AND #used <= :room AND "
                        "(attribute_not_exists(paused_until) OR paused_until <= :now)"
                    ),
                    ExpressionAttributeNames={"#w": "window", "#used": "used"},
                    ExpressionAttributeValues={
                        ":u": {"N": repr(wanted)},
                        ":w": {"N": str(window)},
                        ":room": {"N": repr(most_used)},
                        ":now": {"N": str(now_ms)},
                        ":expires": expires_at(now_ms + _BUDGET_KEEP_MS),
                    },
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                used = float(updated.get("Attributes", {}).get("used", {}).get("N", ceiling))
                return Granted(wanted, left=max(0.0, ceiling - used))
            except ConditionFailed as failed:
                old = failed.item or {}
            paused = int(float(old.get("paused_until", {}).get("N", "0")))
            if paused > now_ms:
                return Granted(0.0, paused, old.get("pause_reason", {}).get("S", ""))
            held = int(float(old.get("window", {}).get("N", "-1")))
            used_before = float(old.get("used", {}).get("N", "0"))
            if held > window:
                # Another container's clock is ahead of this one's: join its window.
                window = held
                continue
            if held == window:
                wanted = room_for(used_before, wanted, least, ceiling)
                if wanted <= 0:
                    return Granted(0.0)
                most_used = max(used_before, ceiling - wanted)
                continue
            owed = carried(used_before, held, window, ceiling)
            granted = room_for(owed, wanted, least, ceiling)
            with contextlib.suppress(ConditionFailed):  # another container opened it first
                await self._call(
                    "update_item",
                    TableName=self._table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET #w = :w, #used = :u, expires_at = :expires",
                    ConditionExpression=(
                        "(attribute_not_exists(#w) OR #w < :w) AND "
                        "(attribute_not_exists(paused_until) OR paused_until <= :now)"
                    ),
                    ExpressionAttributeNames={"#w": "window", "#used": "used"},
                    ExpressionAttributeValues={
                        ":u": {"N": repr(owed + granted)},
                        ":w": {"N": str(window)},
                        ":now": {"N": str(now_ms)},
                        ":expires": expires_at(now_ms + _BUDGET_KEEP_MS),
                    },
                )
                return Granted(granted, left=max(0.0, ceiling - owed - granted))
        return Granted(0.0, left=0.0)

    async def pause(self, key: str, until_ms: int, reason: str) -> None:
        with contextlib.suppress(ConditionFailed):  # a later pause is already there
            await self._call(
                "update_item",
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression=(
                    "SET paused_until = :until, pause_reason = :reason, expires_at = :expires"
                ),
                ConditionExpression="attribute_not_exists(paused_until) OR paused_until < :until",
                ExpressionAttributeValues={
                    ":until": {"N": str(until_ms)},
                    ":reason": {"S": reason[:100]},
                    ":expires": expires_at(until_ms + _BUDGET_KEEP_MS),
                },
            )
