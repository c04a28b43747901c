"""``GET /``: a small public page naming the bot and pointing to the dashboard, health and set-up steps.

It holds nothing private: the account's name from ``config.toml`` and fixed links. Rendered once per
app, with the dashboard's security headers (no script, no style, no framing).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

from bot.admin.dashboard import SECURITY_HEADERS
from bot.settings import Settings

HOME_TEMPLATE = Template(Path(__file__).with_name("home.html").read_text(encoding="utf-8"))


def add_home_page(app: FastAPI, settings: Settings) -> None:
    """Serve the page at ``/`` for this app's account."""
    page = HOME_TEMPLATE.substitute(account_name=escape(settings.content.bot.account_name))
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home_page() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    app.include_router(router)
