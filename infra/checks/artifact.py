"""The functions' artifact, built by the one recipe (``functions/Makefile``) for any platform.

``sam build`` runs that recipe for Lambda's architecture (arm64). Tests and benchmarks run
it for the machine they are on, so that what they import is what Lambda would, compiled
bytecode and all, only with wheels this machine can load.

    python -m infra.checks.artifact DEST     # build for this machine into DEST
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34); manylinux_2_28 wheels load there.
PLATFORMS = {"arm64": "aarch64-manylinux_2_28", "x86_64": "x86_64-manylinux_2_28"}
ARCHITECTURES = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}


def machine_architecture() -> str:
    """This machine's architecture in Lambda's words (``arm64`` or ``x86_64``)."""
    return ARCHITECTURES[platform.machine().lower()]


def _uv() -> str:
    for candidate in (os.environ.get("UV_BIN"), shutil.which("uv"), ROOT / ".tools/uv/bin/uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise FileNotFoundError("uv not found: run `make deps`, or put uv on PATH")


def build(destination: Path, architecture: str | None = None, *, quiet: bool = True) -> Path:
    """Build the artifact for ``architecture`` (default: this machine's) into ``destination``.

    Uses this interpreter to compile the bytecode, so it must be the runtime's Python (3.12).
    """
    chosen = architecture or machine_architecture()
    subprocess.run(  # noqa: S603 - make from PATH, as sam build runs it  # nosec B603 B607
        [  # noqa: S607 - make from PATH, as `sam build` uses it
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(FUNCTIONS),
            "artifact",
            f"ARTIFACTS_DIR={destination}",
            f"LAMBDA_PLATFORM={PLATFORMS[chosen]}",
            f"UV={_uv()}",
            f"PYTHON={os.environ.get('PYTHON_BIN') or sys.executable}",
        ],
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )
    return destination


if __name__ == "__main__":
    build(Path(sys.argv[1]).resolve(), quiet=False)
