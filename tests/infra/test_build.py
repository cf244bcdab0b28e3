"""The artifact Lambda runs, as the build recipe makes it (for this machine's platform)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from infra.checks.artifact import FUNCTIONS, PLATFORMS, build, machine_architecture
from infra.local.template import load_template
from tests.support.interpreter import last_json, run_fresh

pytestmark = pytest.mark.build
TRIMMED = ("ccxt/pro", "ccxt/test", "ccxt/prediction", "ccxt/protobuf", "bin")
DEV_ONLY = ("pytest", "moto", "mypy", "ruff", "schemathesis", "playwright", "botocore_stubs")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("artifact") / "task")


def test_every_module_ships_bytecode_that_never_checks_its_source(artifact: Path) -> None:
    sources = list(artifact.rglob("*.py"))
    assert len(sources) > 1000  # ccxt alone has hundreds
    magic = importlib.util.MAGIC_NUMBER
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        header = compiled.read_bytes()[:8]
        assert header[:4] == magic, compiled
        # PEP 552 flags: bit 0 set = hash-based, bit 1 clear = the source is not checked.
        assert int.from_bytes(header[4:8], "little") == 0b01, compiled


def test_what_never_runs_in_lambda_is_left_out(artifact: Path) -> None:
    for path in TRIMMED:
        assert not (artifact / path).exists(), path
    installed = {p.name.split("-")[0].lower() for p in artifact.glob("*.dist-info")}
    assert installed.isdisjoint(DEV_ONLY)
    assert {"ccxt", "fastapi", "mangum", "uvicorn", "aws_lambda_powertools"} <= installed


def test_the_entry_points_and_the_stream_script_are_in_place(artifact: Path) -> None:
    for entry in ("api_handler.py", "stream_app.py", "warmer_handler.py"):
        assert (artifact / entry).is_file()
    assert (artifact / "market_proxy/api/static/index.html").is_file()
    assert os.access(artifact / "run.sh", os.X_OK)


def test_every_entry_imports_from_the_artifact_alone_and_leaves_the_collector_on(
    artifact: Path,
) -> None:
    """A fresh interpreter that sees only the artifact (as Lambda does) and cannot write
    bytecode (Lambda's code directory is read-only) imports each entry point."""
    environment = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9",  # never called at import
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Build",
    }
    probe = (
        "import gc, json, api_handler, stream_app, warmer_handler\n"
        "print(json.dumps({'collecting': gc.isenabled(), 'frozen': gc.get_freeze_count()}))"
    )
    state = last_json(run_fresh(probe, env=environment, cwd=artifact, confined=True))
    # Init ran with the cycle collector off; it is back on, with what init built frozen.
    assert state["collecting"] is True
    assert state["frozen"] > 100_000


def test_the_recipe_builds_for_the_architecture_the_template_deploys() -> None:
    recipe = (FUNCTIONS / "Makefile").read_text()
    default = re.search(r"^LAMBDA_PLATFORM \?= (\S+)$", recipe, re.MULTILINE)
    assert default is not None
    (architecture,) = load_template()["Globals"]["Function"]["Architectures"]
    assert default.group(1) == PLATFORMS[architecture]
    assert machine_architecture() in PLATFORMS
