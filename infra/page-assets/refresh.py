"""Vendor what the live page and /docs load, from npm, exactly as package-lock.json pins it.

    python infra/page-assets/refresh.py          # rewrite the app's static/vendor/
    python infra/page-assets/refresh.py --check  # fail if the vendored files are not npm's

The app serves these files itself, so the page and /docs work with no internet (no CDN).
``npm ci`` runs in a temporary directory with install scripts off: nothing is left in the
checkout, and swagger-ui-dist's dependency @scarf/scarf (an install script that reports the
download to Scarf, never part of the bundle) never runs. Only the files the app serves are
copied, with their licences, into ``vendor/<package>-<version>/``: the version in the path
lets the app tell browsers to keep them for good. ``vendor/manifest.json`` records each
package's version, tarball, integrity and every file's SHA-256; the app reads it to find
the files.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENDOR = HERE.parents[1] / "functions" / "market_proxy" / "api" / "static" / "vendor"
# The few files each package contributes: what the browser loads, and the licence texts.
PICKS: dict[str, tuple[str, ...]] = {
    "lightweight-charts": ("dist/lightweight-charts.standalone.production.js", "LICENSE"),
    "swagger-ui-dist": (
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.LICENSE.txt",  # the notices of what the bundle contains
        "swagger-ui.css",
        "favicon-32x32.png",
        "LICENSE",
        "NOTICE",
    ),
}
NOTES = {
    "lightweight-charts": "The standalone build also contains fancy-canvas (MIT, TradingView), "
    "whose npm package ships no licence file.",
    "swagger-ui-dist": "FastAPI's get_swagger_ui_html loads these for /docs.",
}
README = """\
# Vendored browser assets

Written by `infra/page-assets/refresh.py` from `npm ci` of `infra/page-assets/package-lock.json`;
do not edit by hand. `manifest.json` says what each file is: package, version, npm tarball,
integrity, licence and SHA-256. To upgrade, change the pin in `infra/page-assets/package.json`,
run `npm install --package-lock-only --ignore-scripts` there, then `python
infra/page-assets/refresh.py`; `--check` verifies that these files are exactly npm's.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, change nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "vendor"
        stage(Path(scratch), staged)
        if args.check:
            drift = differences(staged, VENDOR)
            for line in drift:
                print(line, file=sys.stderr)
            return 1 if drift else 0
        shutil.rmtree(VENDOR, ignore_errors=True)
        shutil.copytree(staged, VENDOR)
    print(f"vendored into {VENDOR}:")
    for name, entry in json.loads((VENDOR / "manifest.json").read_text()).items():
        size = sum((VENDOR / entry["directory"] / f).stat().st_size for f in entry["files"])
        print(f"  {name} {entry['version']}: {size / 1024:.0f} KiB")
    return 0


def stage(scratch: Path, staged: Path) -> None:
    """``npm ci`` into ``scratch``, then the picked files and their manifest into ``staged``."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(HERE / name, scratch / name)
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js and npm")
    subprocess.run(  # noqa: S603 - a fixed command line  # nosec B603
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
        cwd=scratch,
        check=True,
        env={**os.environ, "SCARF_ANALYTICS": "false"},
    )
    locked = json.loads((HERE / "package-lock.json").read_text())["packages"]
    staged.mkdir()
    manifest: dict[str, Any] = {}
    for name, files in PICKS.items():
        package = scratch / "node_modules" / name
        pin = locked[f"node_modules/{name}"]
        installed = json.loads((package / "package.json").read_text())
        if installed["version"] != pin["version"]:
            raise SystemExit(
                f"{name}: npm installed {installed['version']}, locked {pin['version']}"
            )
        directory = f"{name}-{pin['version']}"
        (staged / directory).mkdir()
        hashes = {}
        for relative in files:
            target = staged / directory / Path(relative).name
            shutil.copyfile(package / relative, target)
            hashes[target.name] = hashlib.sha256(target.read_bytes()).hexdigest()
        manifest[name] = {
            "version": pin["version"],
            "license": installed["license"],
            "source": f"https://registry.npmjs.org/{name}/-/{name}-{pin['version']}.tgz",
            "integrity": pin["integrity"],
            "note": NOTES[name],
            "directory": directory,
            "files": hashes,
        }
    (staged / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (staged / "README.md").write_text(README)


def differences(expected: Path, actual: Path) -> list[str]:
    """What differs between two vendor trees, one line a file; none when they are equal."""
    want = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    have = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    lines = [f"missing: {p}" for p in sorted(want - have)]
    lines += [f"not from npm: {p}" for p in sorted(have - want)]
    lines += [
        f"differs: {p}"
        for p in sorted(want & have)
        if not filecmp.cmp(expected / p, actual / p, shallow=False)
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
