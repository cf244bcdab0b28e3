"""The live-ticker page: one static HTML file, no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import HTMLResponse

router = APIRouter()
_PAGE = (Path(__file__).parent / "static" / "index.html").read_text()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={"Cache-Control": "public, max-age=300"})
