"""订阅通知 acceptances: a follower's "accept" in the subscribe popup allows one bizsend of that template.

wechatpy 1.8.18 does not know ``subscribe_msg_popup_event`` and parses it as an unknown message, so the
filter and the parsing of its template list are here.
"""

from datetime import datetime

from handlers.dispatch import Context, Router
from models.outbox import record_subscribe_acceptances

subscribe_messages_router = Router("subscribe_messages")

POPUP_EVENT = "subscribe_msg_popup_event"
POPUP_EVENT_FIELD = "SubscribeMsgPopupEvent"


def is_subscribe_popup(context: Context) -> bool:
    data = context.get("message")._data
    return str(data.get("MsgType", "")).lower() == "event" and str(data.get("Event", "")).lower() == POPUP_EVENT


def accepted_template_ids(data: dict) -> list[str]:
    """The template ids the follower accepted in this popup (a rejection counts for nothing)."""
    entries = (data.get(POPUP_EVENT_FIELD) or {}).get("List") or []
    if isinstance(entries, dict):  # one template: xmltodict gives a dict, not a list of one
        entries = [entries]
    return [entry["TemplateId"] for entry in entries if entry.get("SubscribeStatusString") == "accept" and entry.get("TemplateId")]


@subscribe_messages_router.handler(is_subscribe_popup)
def handle_subscribe_popup(message, openid: str, session, now: datetime) -> None:
    record_subscribe_acceptances(session, openid, accepted_template_ids(message._data), now)
    return None
