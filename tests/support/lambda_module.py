"""Importing a Lambda entry module the way a cold start does: environment first, then import."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest

from market_proxy.settings import Settings
from tests.support.stack import environment_for


@contextmanager
def cold_starts(
    monkeypatch: pytest.MonkeyPatch, *, keep_frozen: bool = False
) -> Iterator[Callable[..., ModuleType]]:
    """Yields ``start(module_name, settings, **extra_env)``; closes what was started.

    ``keep_frozen``: leave what the module froze out of the cycle collector's sight frozen,
    as in a container (benchmarks); tests unfreeze it, their process lives on.
    """
    loaded: list[ModuleType] = []

    def start(name: str, settings: Settings, **extra: str) -> ModuleType:
        for key, value in {**environment_for(settings), **extra}.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop(name, None)
        module = importlib.import_module(name)
        loaded.append(module)
        if not keep_frozen:
            gc.unfreeze()
        return module

    try:
        yield start
    finally:
        gc.unfreeze()
        for module in loaded:
            loop = getattr(module, "loop", None) or asyncio.get_event_loop()
            loop.run_until_complete(module.service.close())
            sys.modules.pop(module.__name__, None)
