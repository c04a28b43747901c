"""Steps the dashboard's browser tests share."""

from __future__ import annotations

from tests.organizer_factories import ADMIN_TOKEN

TEXT_NODE = 3


def log_in(page, base_url: str, token: str = ADMIN_TOKEN) -> None:
    page.goto(f"{base_url}/admin")
    page.get_by_label("管理令牌（ADMIN_TOKEN）").fill(token)
    page.get_by_role("button", name="登录").click()


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def shown_by_control(page, selector: str) -> str:
    """The text a form control draws (a date picker's fields), read from the browser's own shadow tree,
    which page scripts cannot see, through the DevTools protocol."""
    devtools = page.context.new_cdp_session(page)
    root = devtools.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    control = devtools.send("DOM.querySelector", {"nodeId": root["nodeId"], "selector": selector})
    tree = devtools.send("DOM.describeNode", {"nodeId": control["nodeId"], "depth": -1, "pierce": True})["node"]
    devtools.detach()
    texts, pending = [], [tree]
    while pending:
        node = pending.pop(0)
        if node.get("nodeType") == TEXT_NODE:
            texts.append(node["nodeValue"])
        pending[:0] = node.get("shadowRoots", []) + node.get("children", [])
    return "".join(texts)
