"""Programs run in a fresh interpreter: what a cold start really is."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_fresh(
    program: str,
    *args: str,
    env: Mapping[str, str],
    cwd: Path,
    confined: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``program`` (Python source) in a new interpreter, with ``args`` as its argv.

    ``confined``: nothing importable but ``cwd`` and the standard library, no PYTHON*
    variables, no bytecode written (-I -S -B): how Lambda's runtime sees its task directory.
    """
    flags = ["-I", "-S", "-B"] if confined else []
    source = f"import sys; sys.path.insert(0, '.')\n{program}" if confined else program
    return subprocess.run(
        [sys.executable, *flags, "-c", source, *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document ``result`` printed last, or an error quoting what went wrong."""
    if result.returncode != 0:
        raise AssertionError(f"the fresh interpreter failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
