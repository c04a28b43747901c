"""Steps the dashboard's browser tests share."""

from __future__ import annotations

from tests.organizer_factories import ADMIN_TOKEN


def log_in(page, base_url: str, token: str = ADMIN_TOKEN) -> None:
    page.goto(f"{base_url}/admin")
    page.get_by_label("管理令牌（ADMIN_TOKEN）").fill(token)
    page.get_by_role("button", name="登录").click()


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
