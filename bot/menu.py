"""The custom menu: ``[menu]`` in config.toml as WeChat's menu JSON, pushed and read back through the client.

WeChat's limits are checked when the config is loaded (``bot.settings.MenuConfig``), so an invalid menu
never reaches the API. Once the server URL is configured, the MP console's own menu stops working: this
is how organisers keep one.
"""

from __future__ import annotations

from wechatpy import WeChatClient

from models.content import MenuButton, MenuConfig, TopMenuButton


class NoMenuConfigured(Exception):
    """config.toml describes no buttons, so there is nothing to push."""


def _action(button: MenuButton | TopMenuButton) -> dict:
    entry = {"type": button.type, "name": button.name}
    if button.type == "view":
        entry["url"] = button.url
    else:
        entry["key"] = button.key
    return entry


def menu_body(menu: MenuConfig) -> dict:
    """The body of WeChat's ``menu/create`` call for the configured buttons."""
    return {
        "button": [
            {"name": button.name, "sub_button": [_action(sub) for sub in button.sub_buttons]}
            if button.sub_buttons
            else _action(button)
            for button in menu.buttons
        ]
    }


def _comparable(buttons: list[dict]) -> list[dict]:
    # menu/get adds an empty sub_button list to every button without sub-buttons, and sometimes ids.
    return [
        {
            **{name: value for name, value in button.items() if name not in ("sub_button", "menuid")},
            **({"sub_button": _comparable(button["sub_button"])} if button.get("sub_button") else {}),
        }
        for button in buttons
    ]


def same_menu(live: dict, menu: MenuConfig) -> bool:
    """Whether the live menu (``menu/get``'s ``menu``) is the one config.toml describes."""
    return _comparable(live.get("button", [])) == _comparable(menu_body(menu)["button"])


def push_menu(client: WeChatClient, menu: MenuConfig) -> dict:
    """Create the configured menu on the account (replacing the live one); returns the body sent."""
    if not menu.buttons:
        raise NoMenuConfigured("config.toml has no [[menu.buttons]]: nothing to push")
    body = menu_body(menu)
    client.menu.create(body)
    return body


def live_menu(client: WeChatClient) -> dict | None:
    """The menu live on the account (``{"button": [...]}``), or None when it has none."""
    live = client.menu.get()  # wechatpy turns WeChat's "menu no exist" (46003) into None
    return live["menu"] if live else None


def describe_menu(body: dict, menu: MenuConfig) -> str:
    """A menu as lines for a terminal, each clickable key with what it answers in config.toml."""

    def line(button: dict, indent: str) -> str:
        if button.get("sub_button"):
            return f"{indent}{button['name']}"
        if button.get("type") == "view":
            return f"{indent}{button['name']}  [view] {button.get('url', '')}"
        key = button.get("key", "")
        answer = ""
        if key in menu.click_topics:
            answer = f" → topic {menu.click_topics[key]}"
        elif key in menu.click_rules:
            answer = f" → rule {menu.click_rules[key]}"
        return f"{indent}{button['name']}  [{button.get('type', '?')}] {key}{answer}"

    lines = []
    for button in body.get("button", []):
        lines.append(line(button, ""))
        lines += [line(sub, "  - ") for sub in button.get("sub_button") or []]
    return "\n".join(lines)
