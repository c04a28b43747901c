"""``/admin``: the organizer dashboard, a static page that calls the admin API from the browser.

The page carries no data: it asks for the admin token, keeps it in the tab's sessionStorage and sends
it as a bearer header with every API call, so the page and its assets can be served without auth. The
Content-Security-Policy allows only this origin's own script and style, which blocks injected markup
from running even if a registrant's name were ever rendered as HTML.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:;"
        " form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

dashboard_router = APIRouter(include_in_schema=False)


@dashboard_router.get("/admin")
def dashboard_page() -> FileResponse:
    """The dashboard's single page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard page at ``/admin`` and its script and style under ``/admin/static``."""
    app.include_router(dashboard_router)
    app.mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="admin-static")
