"""The OpenAPI document: FastAPI's own, completed with what only the running service knows.

Some bounds are configuration (the served exchanges and their timeframes, the most candles
per request, the stream intervals), so routes cannot state them where they are declared;
they are written into the document here, from the settings the service enforces them with.
Every problem+json answer shares one schema, ``Problem``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from market_proxy.api import schemas
from market_proxy.api.routes import tickers_bounds
from market_proxy.service import MarketData

COMPONENT = "#/components/schemas/"


def install(app: FastAPI, service: MarketData) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            built = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = built.setdefault("components", {}).setdefault("schemas", {})
            for model in (schemas.Problem, schemas.StreamProblem, schemas.Reconnect):
                # Referenced by name from error answers and stream events, not from a route.
                described = model.model_json_schema(ref_template=COMPONENT + "{model}")
                components.update(described.pop("$defs", {}))
                components[model.__name__] = described
            bounds = configured_bounds(service)
            for path, path_item in built["paths"].items():
                for operation in path_item.values():
                    for parameter in operation.get("parameters", []):
                        name = parameter["name"]
                        keywords = bounds.get(f"{path.split('/')[1]}.{name}", bounds.get(name))
                        _narrow(parameter["schema"], keywords or {})
                        if keywords and "description" in keywords:
                            parameter["description"] = keywords["description"]
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def configured_bounds(service: MarketData) -> dict[str, dict[str, Any]]:
    """JSON Schema keywords, by parameter name (``route.name`` where routes differ, the
    route named by its path's first segment), for the bounds that come from settings."""
    settings = service.settings
    timeframes = [tf for offered in service.exchanges() for tf in offered["timeframes"]]
    return {
        "exchange": {"enum": list(settings.exchanges)},
        "timeframe": {"enum": list(dict.fromkeys(timeframes))},
        "historical.limit": {"maximum": settings.ohlcv_max_candles},
        "trades.limit": {"maximum": settings.trades_max_limit},
        "markets.limit": {"maximum": settings.markets_max_limit},
        "tickers.symbols": tickers_bounds(settings.tickers_max_symbols),
        "depth": {"maximum": settings.orderbook_max_depth},
        "interval": {
            "minimum": settings.stream_min_interval_seconds,
            "maximum": settings.stream_max_interval_seconds,
        },
    }


def _narrow(schema: dict[str, Any], keywords: dict[str, Any]) -> None:
    """Lay ``keywords`` over a parameter's schema (its non-null branch, when optional)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") != "null":
            branch.update(keywords)
