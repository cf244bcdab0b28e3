from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.template import create_table
from market_proxy.cache.dynamodb import DynamoDBStore


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """moto's in-process DynamoDB, with the cache table created from template.yaml."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "cache-test")
        yield client


@pytest.fixture
def store(dynamodb: Any) -> DynamoDBStore:
    return DynamoDBStore(dynamodb, "cache-test")
