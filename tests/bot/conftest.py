"""Fixtures of the dashboard's browser tests: Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium-l10n: the browser runs in Chinese, as an organizer's does. Chromium draws a date picker
# in its own language (LANG), not the page's lang nor the context's locale.
CHROMIUM_CHINESE = Path("/usr/lib/chromium/locales/zh-CN.pak")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not (CHROMIUM.exists() and CHROMIUM_CHINESE.exists()):
        message = f"{CHROMIUM} or {CHROMIUM_CHINESE} is missing: apt-get install chromium chromium-driver chromium-l10n"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env={**os.environ, "LANG": "zh_CN.UTF-8"}
        )
        yield browser
        browser.close()
