"""Settings every test session needs: no real AWS, Powertools quiet and deterministic."""

from __future__ import annotations

import os

# Before anything imports boto3 or Powertools.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "market-data-proxy",
        "POWERTOOLS_METRICS_NAMESPACE": "MarketDataProxyTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_PROFILE", None)
