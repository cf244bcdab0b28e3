"""Reading what the functions print: CloudWatch embedded-metric (EMF) documents and
Powertools' JSON log lines, both on stdout."""

from __future__ import annotations

import json
from typing import Any


def documents(output: str) -> list[dict[str, Any]]:
    """Every JSON object printed one per line in ``output``."""
    found = []
    for line in output.splitlines():
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def metric_total(output: str, name: str, *, exchange: str | None = None) -> float:
    """The sum of metric ``name`` over the EMF documents in ``output``.

    Without ``exchange``, only the service-wide documents count; with it, only those of
    that exchange's dimension (the same figure is flushed in both, so never add them up).
    """
    total = 0.0
    for document in documents(output):
        if "_aws" not in document or name not in document:
            continue
        if document.get("exchange") != exchange:
            continue
        value = document[name]
        total += sum(value) if isinstance(value, list) else float(value)
    return total


def log_records(output: str, message: str) -> list[dict[str, Any]]:
    """Powertools' log records in ``output`` with this message."""
    return [d for d in documents(output) if d.get("message") == message and "level" in d]
