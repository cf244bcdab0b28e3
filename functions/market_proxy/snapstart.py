"""SnapStart runtime hooks: what to do before Lambda snapshots an initialised container and
after it restores one.

Lambda's Python runtime provides ``snapshot_restore_py``; anywhere else (tests, ``make run``)
there is nothing to snapshot and :func:`register` does nothing.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from types import ModuleType

from market_proxy.service import MarketData


def _hooks_module() -> ModuleType | None:
    try:
        return importlib.import_module("snapshot_restore_py")
    except ImportError:
        return None


def register(
    service: MarketData,
    loop: asyncio.AbstractEventLoop,
    *,
    also_before: Callable[[], None] | None = None,
) -> bool:
    """Register the hooks of ``service``, run on ``loop`` (the container's one loop), and
    ``also_before`` the snapshot (what else the snapshot should hold ready).

    Returns whether the runtime takes hooks at all.
    """
    hooks = _hooks_module()
    if hooks is None:
        return False

    def before_snapshot() -> None:
        if also_before is not None:
            also_before()
        loop.run_until_complete(service.prepare_snapshot())

    def after_restore() -> None:
        loop.run_until_complete(service.restored())

    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    return True
