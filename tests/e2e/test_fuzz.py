"""Bad input, fuzzed: schemathesis over the app's own OpenAPI document, over real HTTP.

Every operation gets its documented examples, then schema-valid and schema-invalid requests
from Hypothesis, derandomized so that each run sends the same ones. The app runs under
uvicorn on DynamoDB Local and the loopback exchange, which stays healthy: so no answer may be
a 5xx, every answer must be documented (status, content type, headers, body, and each event
of a stream), and every schema-invalid request must be refused. Streams end after a fraction
of a second here, so they are fuzzed like everything else.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from market_proxy.api import reference, routes, streaming
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.http import serve

pytestmark = pytest.mark.e2e

# Requests per operation and generation mode (some operations have fewer distinct inputs),
# and per documented example (its other parameters generated). `make test` sends a budget
# sized for CI; `make fuzz` a longer run (FUZZ_PER_MODE).
PER_MODE = int(os.environ.get("FUZZ_PER_MODE", "30"))
EXAMPLE_VARIANTS = 3
AT_LEAST = 6 * PER_MODE
FUZZED = {
    "stream_max_seconds": 0.2,  # a valid stream ends by itself, with its reconnect event
    "stream_heartbeat_seconds": 0.1,
    "stream_min_interval_seconds": 0.1,
    "ohlcv_max_candles": 2000,  # the bound is fuzzed, not the exchange's paging
    # Healthy but on a busy machine: a slow answer must not read as the exchange's timeout.
    "upstream_timeout_ms": 10_000,
}
# Not positive_data_acceptance: a schema-valid request may still be refused with a 400, for
# what JSON Schema cannot say (since after until, a timeframe only the other exchange has).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
HYPOTHESIS = hypothesis.settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    verbosity=Verbosity.quiet,
)


@dataclass
class Tally:
    """What the fuzzer sent and got back, and the first reproduction of each failure."""

    requests: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def send(self, case: Case[Any]) -> None:
        label = case.operation.label
        try:
            response = case.call(timeout=30)
        except Exception as exc:  # no answer at all (reset, timeout) is a failure too
            self._fail(case, f"no answer: {exc!r}\n{case.as_curl_command()}")
            return
        self.requests[label] += 1
        if 200 <= response.status_code < 300:
            self.accepted[label] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failed:  # a failure, or a FailureGroup
            self._fail(case, str(failed))

    def _fail(self, case: Case[Any], message: str) -> None:
        kinds = tuple(re.findall(r"^- (ST\d+ .*)$", message, re.MULTILINE)) or (message[:80],)
        self.failures.setdefault(
            (case.operation.label, kinds), f"{case.operation.label}\n{message}\n"
        )


def run(
    strategy: st.SearchStrategy[Case[Any]], send: Callable[[Case[Any]], None], *, examples: int
) -> None:
    @hypothesis.settings(HYPOTHESIS, max_examples=examples)
    @given(case=strategy)
    def requests(case: Case[Any]) -> None:
        send(case)

    requests()


def declared_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app puts in its document, from its routers."""
    return sorted(
        (method, route.path_format)
        for route in [*routes.router.routes, *reference.router.routes, *streaming.router.routes]
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    )


@pytest.mark.timeout(600)
def test_fuzzed_requests_get_documented_answers_and_never_a_server_error(
    settings: Settings,
) -> None:
    app = create_app(MarketData.from_settings(settings.model_copy(update=FUZZED)))
    declared = declared_operations()
    tally = Tally()
    started = time.monotonic()
    with serve(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        assert len(list(schema.get_all_operations())) == len(declared)
        for method, path in declared:
            operation = schema[path][method]
            for example in operation.get_strategies_from_examples():
                run(example, tally.send, examples=EXAMPLE_VARIANTS)
            run(operation.as_strategy(GenerationMode.POSITIVE), tally.send, examples=PER_MODE)
            if list(operation.iter_parameters()):  # nothing to make invalid otherwise
                negative = operation.as_strategy(GenerationMode.NEGATIVE)
                run(negative, tally.send, examples=PER_MODE)
    took = time.monotonic() - started
    sent = sum(tally.requests.values())
    print(f"\nfuzzed: {sent} requests in {took:.1f} s; {dict(tally.requests)}")

    assert not tally.failures, "\n\n".join(tally.failures.values())
    labels = {f"{method} {path}" for method, path in declared}
    assert set(tally.requests) == labels, "every operation was fuzzed"
    assert sent >= AT_LEAST
    assert set(tally.accepted) == labels, "every operation also answered with success"
