"""Reading ``template.yaml``, the one home of the cache table's schema.

The local stack and the tests create their tables from the template's own ``Properties``,
so the schema they run against is the deployed one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TABLE_RESOURCE = "CacheTable"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short intrinsic tags (``!Ref``…)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader + CFN tags  # nosec B506
    return document


def table_properties() -> dict[str, Any]:
    resource = load_template()["Resources"][TABLE_RESOURCE]
    properties: dict[str, Any] = resource["Properties"]
    return properties


def create_table(client: Any, table_name: str) -> None:
    """Create ``table_name`` exactly as the template defines the cache table, TTL included."""
    props = table_properties()
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if optional in props:
            request[optional] = props[optional]
    client.create_table(**request)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
