"""The live page (``/``), the files it loads, and the API docs (``/docs``), all from the app.

Nothing comes from a CDN, so both work with no internet. The libraries are vendored under
``static/vendor/<package>-<version>/`` by ``infra/page-assets/refresh.py`` (from npm, pinned),
whose ``manifest.json`` says which files exist; the version in their path lets browsers keep
them for good. The pages use relative URLs, so they work under an API Gateway stage prefix
such as ``/v1/``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"
MOUNT = "static/vendor"
PAGE_CACHE = "public, max-age=300"
FOREVER = "public, max-age=31536000, immutable"

_MANIFEST: dict[str, Any] = json.loads((VENDOR / "manifest.json").read_text())
_SERVED = frozenset(
    f"{entry['directory']}/{name}" for entry in _MANIFEST.values() for name in entry["files"]
)


def vendored(package: str, name: str) -> str:
    """The URL of one vendored file, relative to the app's root; KeyError if not vendored."""
    entry = _MANIFEST[package]
    if name not in entry["files"]:
        raise KeyError(f"{package} {entry['version']} vendors no {name}")
    return f"{MOUNT}/{entry['directory']}/{name}"


class VendoredFiles(StaticFiles):
    """The vendored files (with ETag and Last-Modified, as StaticFiles does), and only those
    the manifest lists; kept for good by browsers, since a new version has a new path."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in _SERVED:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = FOREVER
        return response


router = APIRouter()
router.mount(f"/{MOUNT}", VendoredFiles(directory=VENDOR), name="vendored")

_PAGE = (
    (STATIC / "index.html")
    .read_text()
    .replace(
        "{{lightweight-charts}}",
        vendored("lightweight-charts", "lightweight-charts.standalone.production.js"),
    )
)
# Inline: a PNG from the API function would reach browsers as base64 text, since the REST
# API declares no binary media types; in the page it costs no request at all.
_FAVICON = "data:image/png;base64," + base64.b64encode(
    (VENDOR / _MANIFEST["swagger-ui-dist"]["directory"] / "favicon-32x32.png").read_bytes()
).decode("ascii")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={"Cache-Control": PAGE_CACHE})


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI from the app's own copy, its favicon inline. Its online validator is off
    too: in a layout that shows its badge, that is an image from validator.swagger.io."""
    openapi_url = request.app.openapi_url or "/openapi.json"
    answer = get_swagger_ui_html(
        openapi_url=openapi_url.lstrip("/"),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=vendored("swagger-ui-dist", "swagger-ui-bundle.js"),
        swagger_css_url=vendored("swagger-ui-dist", "swagger-ui.css"),
        swagger_favicon_url=_FAVICON,
        swagger_ui_parameters={"validatorUrl": None},
    )
    answer.headers["Cache-Control"] = PAGE_CACHE
    return answer
