"""Every problem code the service can answer is one a client can look up: in ``GET
/problems`` (derived from the error classes) and in the README's table of errors."""

from __future__ import annotations

import re
from pathlib import Path

from market_proxy import errors
from market_proxy.api import problems

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_error_class_is_described_by_get_problems() -> None:
    described = {problem["code"] for problem in problems.describe()}
    assert described == {kind.code for kind in errors.kinds()}


def test_every_code_the_service_answers_is_in_the_readmes_table_of_errors() -> None:
    table_rows = [line for line in README.read_text().splitlines() if line.startswith("|")]
    in_tables = set(re.findall(r"`([a-z_]+)`", "\n".join(table_rows)))
    missing = {kind.code for kind in errors.kinds()} - in_tables
    assert not missing, f"codes missing from the README's tables: {sorted(missing)}"
