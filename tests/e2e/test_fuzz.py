"""Bad input, fuzzed: schemathesis over the app's own OpenAPI document, over real HTTP; and
odd Lambda events, fed to ApiFunction's handler.

Every operation gets its documented examples, then schema-valid and schema-invalid requests
from Hypothesis, derandomized so that each run sends the same ones. The app runs under
uvicorn on DynamoDB Local and the loopback exchange, which stays healthy: so no answer may be
a 5xx, every answer must be documented (status, content type, headers, body, and each event
of a stream), and every schema-invalid request must be refused. Streams end after a fraction
of a second here, so they are fuzzed like everything else.

The events are API Gateway REST events with parts dropped or replaced by any JSON value, and
any JSON value at all: whatever the handler is given, it answers in the REST proxy shape,
with a problem when it cannot serve, never a 5xx and never an exception.
"""

from __future__ import annotations

import base64
import json
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

from market_proxy.api import events, reference, routes, streaming
from market_proxy.api.app import create_app
from market_proxy.api.problems import PROBLEM_JSON
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.http import serve
from tests.support.lambda_api import lambda_api

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


# --- Lambda events ------------------------------------------------------------------------

EVENTS_PER_RUN = 8 * PER_MODE
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
PATHS = st.sampled_from(
    [
        "/health",
        "/exchanges",
        "/problems",
        "/ticker/binance/BTC-USDT",
        "/historical/kraken/BTC-USD",
        "/sse/ticker/binance/BTC-USDT",
        "/mcp",
        "/nothing/here",
    ]
) | st.text(max_size=24).map(lambda text: "/" + text)
# Where a part of the event may be dropped or replaced: a key, or a key within one.
PARTS = [
    ("resource",),
    ("path",),
    ("httpMethod",),
    ("headers",),
    ("multiValueHeaders",),
    ("queryStringParameters",),
    ("multiValueQueryStringParameters",),
    ("requestContext",),
    ("body",),
    ("isBase64Encoded",),
    ("version",),
    ("requestContext", "requestId"),
    ("requestContext", "identity"),
    *(
        (headers, name)
        for headers in ("headers", "multiValueHeaders")
        for name in ("Host", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Request-Id", "Origin")
    ),
    ("queryStringParameters", "limit"),
    ("multiValueQueryStringParameters", "symbols"),
]
DROPPED = object()


@st.composite
def odd_events(draw: st.DrawFn) -> Any:
    """A REST event with a few of its parts dropped or replaced (by a JSON value, a string
    or a base64 body), or any JSON value in its place."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "DELETE"]))
    event = rest_event(draw(PATHS), method=method, query={"limit": "5"})
    for part in draw(st.lists(st.sampled_from(PARTS), max_size=3)):
        value = draw(
            st.just(DROPPED)
            | JSON_VALUES
            | st.text(max_size=16)
            | st.binary(max_size=8).map(lambda raw: base64.b64encode(raw).decode())
        )
        holder: Any = event
        for key in part[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        if value is DROPPED:
            holder.pop(part[-1], None)
        else:
            holder[part[-1]] = value
    return event


def test_the_event_checks_never_raise_whatever_the_event() -> None:
    @hypothesis.settings(HYPOTHESIS, max_examples=EVENTS_PER_RUN)
    @given(event=odd_events())
    def check(event: Any) -> None:
        reason = events.malformed(event)
        assert reason is None or isinstance(reason, str)
        json.dumps(events.shape(event))
        assert events.instance(event).startswith("/")

    check()


@pytest.mark.timeout(300)
def test_fuzzed_lambda_events_get_a_rest_proxy_answer_below_500_and_never_raise(
    settings: Settings,
) -> None:
    seen: Counter[int] = Counter()
    with lambda_api(settings) as api:

        @hypothesis.settings(HYPOTHESIS, max_examples=EVENTS_PER_RUN)
        @given(event=odd_events())
        def invoke(event: Any) -> None:
            response = api.module.handler(event, LambdaContext())
            assert isinstance(response, dict)
            status = response["statusCode"]
            assert type(status) is int
            assert 100 <= status < 500, response
            seen[status] += 1
            headers = {name.lower(): value for name, value in response["headers"].items()}
            assert headers["x-content-type-options"] == "nosniff"
            assert isinstance(response["body"], str)
            if status >= 400 and response["body"]:
                assert headers["content-type"] == PROBLEM_JSON
                assert json.loads(response["body"])["status"] == status

        invoke()
    print(f"\nfuzzed events: {dict(sorted(seen.items()))}")
    assert 400 in seen, "malformed events were among them"
    assert 200 in seen, "well-formed ones too"
