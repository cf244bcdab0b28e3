"""Cold start of the built API artifact: a fresh interpreter in the artifact's directory
imports ``api_handler``, initialises, and answers its first ticker (markets restored from
the snapshot in DynamoDB Local, the ticker fetched from the loopback exchange).

Against, in the same run and interleaved with it:
(a) the bare cost of importing the same libraries: every third-party module the cold start
    loaded, imported in the same order by a fresh interpreter, nothing else;
(b) the same artifact with its bytecode removed, as a build without it would ship.

The artifact is built by the deployed recipe (functions/Makefile) for this machine's
architecture: the deployed one (arm64) cannot run here, and bytecode, which is what is
measured, is the same for both. The interpreters run with ``-I -S -B``: nothing on the path
but the artifact, and no bytecode written (Lambda's code directory is read-only).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from infra.checks.artifact import build, machine_architecture
from infra.local.dynamodb import local_client
from infra.local.template import load_template
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.perf.report import Report
from tests.perf.stack import Stack
from tests.support.apigw import rest_event
from tests.support.interpreter import last_json, run_fresh
from tests.support.stack import environment_for

TITLE = "Cold start of the built API artifact"
ROUNDS = 3
PATH = "/ticker/binance/BTC-USDT"
TICKER_KEY = "ticker#binance#BTC/USDT"

# The first answer, timed from the interpreter's start; then the modules it loaded.
COLD = """
import json, sys, time
import api_handler

class Context:
    function_name = "ApiFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    memory_limit_in_mb = 1024
    aws_request_id = "cold-start"
    log_group_name = "/aws/lambda/ApiFunction"
    log_stream_name = "cold"
    def get_remaining_time_in_millis(self):
        return 29000

response = api_handler.handler(json.loads(sys.argv[1]), Context())
answered = time.time()
print(json.dumps({"answered": answered, "status": response["statusCode"],
                  "source": response["headers"].get("x-cache"), "modules": list(sys.modules)}))
"""
BARE = """
import gc, importlib, json, sys, time
if sys.argv[2] == "collector-off":
    gc.disable()
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError:  # made at run time by its package (six.moves...): loaded with it
        pass
print(json.dumps({"answered": time.time()}))
"""


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    architecture = machine_architecture()
    (deployed,) = load_template()["Globals"]["Function"]["Architectures"]
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        compiled = build(Path(scratch) / "task", architecture)
        sources_only = Path(scratch) / "task-without-bytecode"
        shutil.copytree(compiled, sources_only)
        for cache in list(sources_only.rglob("__pycache__")):
            shutil.rmtree(cache)
        report.figure(
            f"artifact built by functions/Makefile for {architecture} (this machine)"
            + ("" if architecture == deployed else f"; the template deploys {deployed}")
        )
        with stack.table() as table:
            settings = stack.settings("ApiFunction", table)
            asyncio.run(_snapshot_markets(settings))
            stack.reset_exchange()
            environment = _lambda_environment(settings, compiled)
            event = json.dumps(rest_event(PATH))
            libraries = _third_party(_spawn(compiled, COLD, event, environment, table)["modules"])
            timings: dict[str, list[float]] = {
                "bare": [],
                "bare_collector_off": [],
                "cold": [],
                "no_bytecode": [],
            }
            sources: set[str] = set()
            modules = json.dumps(libraries)
            for _ in range(ROUNDS):
                for name, collector in (("bare", "on"), ("bare_collector_off", "collector-off")):
                    answer = _spawn(compiled, BARE, modules, environment, argument2=collector)
                    timings[name].append(answer["seconds"])
                for name, directory in (("cold", compiled), ("no_bytecode", sources_only)):
                    answer = _spawn(directory, COLD, event, environment, table)
                    if answer["status"] != 200:
                        raise RuntimeError(f"{name}: the first ticker answered {answer['status']}")
                    sources.add(str(answer["source"]))
                    timings[name].append(answer["seconds"])
            markets_calls = stack.sim.calls(endpoint="markets")

    bare, bare_off, cold, no_bytecode = (statistics.median(timings[k]) for k in timings)
    report.figure(f"{len(libraries)} third-party modules loaded; medians of {ROUNDS} runs each")
    report.figure(f"(a) bare import of the same libraries   {bare * 1000:8.0f} ms")
    report.figure(
        f"    the same with the cycle collector off {bare_off * 1000:6.0f} ms  (as the entry "
        "imports them: what init and the first answer add is the cold start less this)"
    )
    report.figure(
        f"    cold start to first ticker          {cold * 1000:8.0f} ms  (x-cache {sources})"
    )
    report.figure(f"(b) same artifact without bytecode      {no_bytecode * 1000:8.0f} ms")
    report.target("markets downloads with a snapshot in the table", markets_calls, 0)
    report.target("cold start / bare import (a)", cold / bare, 1.25, "x")
    report.target("cold start / no-bytecode cold start (b)", cold / no_bytecode, 1 / 4, "x")
    return report


async def _snapshot_markets(settings: Settings) -> None:
    """Put the markets snapshot in the table, as the warmer (or an earlier container) does."""
    service = MarketData.from_settings(settings)
    try:
        await service.load_markets("binance")
    finally:
        await service.close()


def _lambda_environment(settings: Settings, task_root: Path) -> dict[str, str]:
    """The variables Lambda's runtime sets that libraries act on, and the function's own."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        # The X-Ray SDK samples locally in Lambda; elsewhere it builds a client for X-Ray's
        # sampling API at import, most of a second that Lambda never spends.
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "ApiFunction",
        "POWERTOOLS_SERVICE_NAME": "market-data-proxy",
        "POWERTOOLS_METRICS_NAMESPACE": "MarketDataProxyBench",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here to send traces to
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **environment_for(settings),
    }


def _spawn(
    directory: Path,
    script: str,
    argument: str,
    environment: dict[str, str],
    table: str = "",
    *,
    argument2: str = "",
) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter in ``directory``; its answer, with ``seconds``
    from the spawn to the moment it reported."""
    if table:  # every cold start fetches its first ticker, as the first after an expiry does
        _forget(environment["DYNAMODB_ENDPOINT_URL"], table, TICKER_KEY)
    started = time.time()
    answer: dict[str, Any] = last_json(
        run_fresh(
            script,
            *(a for a in (argument, argument2) if a),
            env=environment,
            cwd=directory,
            confined=True,
            timeout=300,
        )
    )
    answer["seconds"] = answer["answered"] - started
    return answer


def _forget(endpoint: str, table: str, key: str) -> None:
    client: Any = local_client(endpoint)
    client.delete_item(TableName=table, Key={"pk": {"S": key}})


def _third_party(modules: list[str]) -> list[str]:
    """The modules of installed packages, in load order (not ours, not the standard library)."""
    ours = {"api_handler", "market_proxy", "__main__"}
    standard = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    return [
        name
        for name in modules
        if name.partition(".")[0] not in ours | standard and not name.startswith("_")
    ]
