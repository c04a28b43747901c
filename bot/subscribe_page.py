"""``GET /subscribe/{event_id}``: the page where a follower grants the 订阅通知 that carries a reminder to
someone who has not written to the account for 48 hours.

WeChat's browser shows the grant dialog through the subscribe open tag (``wx-open-subscribe``), once the
JS-SDK is configured with a signature over this page's URL and the account's ``jsapi_ticket`` (fetched
through the WeChat client and shared by all processes like the access token), computed per request. The
acceptance itself reaches the webhook as a ``subscribe_msg_popup_event`` (``handlers/subscribe_messages.py``),
which records it for the sender.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from requests import RequestException
from wechatpy.exceptions import WeChatClientException

from bot.deps import SettingsDep
from bot.services import services_of
from bot.settings import Settings
from models import texts
from models.reminder import REMINDER_TEMPLATE_KEY
from scheduler.wechat_client import TokenUnavailable

subscribe_router = APIRouter(tags=["subscribe"])

# WeChat's JS-SDK: the open tags exist only in WeChat's own browser, configured by this script.
JS_SDK_URL = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"
# A string.Template rather than a template engine: one small page, every value escaped below.
PAGE = Template("""<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>$title</title>
  <style>
    body { font-family: system-ui, sans-serif; margin: 2rem 1.25rem; line-height: 1.6; color: #222; }
    #result { color: #07c160; min-height: 1.6em; }
  </style>
</head>
<body>
  <h1>$title</h1>
  <p>$explanation</p>
  $action
  <p id="result" role="status" data-done="$done" data-declined="$declined" data-failed="$failed"></p>
</body>
</html>
""")
ACTION = Template("""<wx-open-subscribe id="subscribe" template="$template_id">
    <script type="text/wxtag-template">
      <button style="font-size: 17px; padding: 10px 24px; border: 0; border-radius: 6px; background: #07c160; color: #fff;">$button</button>
    </script>
  </wx-open-subscribe>
  <script src="$js_sdk"></script>
  <script id="wx-config" type="application/json">$config</script>
  <script>
    "use strict";
    wx.config(JSON.parse(document.getElementById("wx-config").textContent));
    const result = document.getElementById("result");
    const tag = document.getElementById("subscribe");
    tag.addEventListener("success", (event) => {
      const accepted = String(event.detail.subscribeDetails || "").includes("accept");
      result.textContent = accepted ? result.dataset.done : result.dataset.declined;
    });
    tag.addEventListener("error", () => { result.textContent = result.dataset.failed; });
  </script>""")


def page_url(settings: Settings, request: Request) -> str:
    """The URL the follower's browser shows (what WeChat signs against): behind a proxy, ``public_base_url``."""
    base = settings.content.bot.public_base_url.rstrip("/")
    if not base:
        return str(request.url).split("#")[0]
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base}{request.url.path}{query}"


def _page(status: int, title: str, explanation: str, action: str = "") -> HTMLResponse:
    body = PAGE.substitute(
        title=html.escape(title),
        explanation=html.escape(explanation),
        action=action,
        done=html.escape(texts.SUBSCRIBE_DONE),
        declined=html.escape(texts.SUBSCRIBE_DECLINED),
        failed=html.escape(texts.SUBSCRIBE_FAILED),
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@subscribe_router.get("/subscribe/{event_id}", response_class=HTMLResponse)
def subscribe_page(event_id: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    """The grant page: what the 订阅通知 is for, and WeChat's subscribe button, signed for this request."""
    event = settings.content.event_by_id(event_id)
    template_id = settings.content.delivery.subscribe_templates.get(REMINDER_TEMPLATE_KEY, "")
    client = services_of(request.app).wechat
    if event is None or not template_id or client is None:
        return _page(404, texts.SUBSCRIBE_PAGE_TITLE, texts.SUBSCRIBE_NOT_OFFERED)
    try:
        ticket = client.jsapi_ticket()
    except (TokenUnavailable, WeChatClientException, RequestException):
        return _page(503, texts.SUBSCRIBE_PAGE_TITLE, texts.SUBSCRIBE_UNAVAILABLE)
    # WeChat checks the signature's timestamp against the real time, not the event clock.
    timestamp, nonce = int(time.time()), secrets.token_urlsafe(12)
    config = {
        "debug": False,
        "appId": settings.wechat_app_id,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": client.jsapi.get_jsapi_signature(nonce, ticket, timestamp, page_url(settings, request)),
        "jsApiList": ["checkJsApi"],
        "openTagList": ["wx-open-subscribe"],
    }
    action = ACTION.substitute(
        template_id=html.escape(template_id),
        button=html.escape(texts.SUBSCRIBE_BUTTON),
        js_sdk=JS_SDK_URL,
        # Inside <script>: no "<" may end the element early.
        config=json.dumps(config).replace("<", "\\u003c"),
    )
    return _page(200, texts.SUBSCRIBE_PAGE_TITLE, texts.subscribe_explanation(event, settings.tz), action)
