"""The settings a deployed function has, as template.yaml gives them, on the loopback stack.

A function's environment is the template's ``Globals`` variables overlaid with its own, each
``!Ref`` to a parameter read as that parameter's default. What names the deployed stack's own
resources or the real exchanges (the table, the endpoint, the exchanges and their options) is
the loopback stack's to supply.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import ExchangeSim
from infra.local.template import load_template
from market_proxy.settings import Settings
from tests.support.stack import settings_for

# Supplied by the loopback stack, never taken from the template.
STACK_OWNED = frozenset({"table_name", "dynamodb_endpoint_url", "exchanges", "exchange_options"})


def function_environment(logical_id: str) -> dict[str, str]:
    """The environment variables template.yaml sets on ``logical_id`` that a local run can
    reproduce: literal values, and parameters at their defaults. Other intrinsics (a
    resource's name, ``!Sub``) are left out."""
    template = load_template()
    parameters: dict[str, Any] = template.get("Parameters", {})
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {})
    variables = {**shared.get("Variables", {}), **own.get("Variables", {})}
    environment = {}
    for name, value in variables.items():
        if isinstance(value, dict):
            parameter = parameters.get(value.get("Ref", ""))
            if parameter is None or "Default" not in parameter:
                continue
            value = parameter["Default"]
        environment[name] = str(value)
    return environment


def deployed_settings(
    logical_id: str, endpoint: str, table: str, sim: ExchangeSim, **overrides: Any
) -> Settings:
    """Settings as ``logical_id`` reads them when deployed, pointed at this stack."""
    environment = function_environment(logical_id)
    deployed = {
        name: environment[name.upper()]
        for name in Settings.model_fields
        if name.upper() in environment and name not in STACK_OWNED
    }
    return settings_for(endpoint, table, sim, **{**deployed, **overrides})
