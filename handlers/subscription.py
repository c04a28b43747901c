"""Follow and unfollow: a welcome about the current event, and the QR scene recorded as the channel."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import EventType, checkin_scene, qr_scene
from handlers.replies import Reply, Text
from handlers.rules import configured_reply
from models import Follower, texts
from models.activity import Activity
from models.content import Content, Event

subscription_router = Router("subscribe")


def _not_checkin(context) -> bool:
    # Following by scanning the check-in code is a check-in (registration router), not a channel.
    return not checkin_scene(context)


# Every way wechatpy names a follow: plain, by a parametric QR code, by scanning a product barcode/image.
@subscription_router.handler(EventType("subscribe", "subscribe_scan", "subscribe_scan_product"), _not_checkin)
def handle_subscribe(
    message, event: Event, now: datetime, content: Content, follower: Follower, activity: Activity
) -> Reply:
    scene = qr_scene(message)
    if scene and follower.channel is None:
        follower.channel = scene[:64]
    follower.subscribed = True
    activity.last_list = "help"
    # The organisers' own welcome ([welcome] in config.toml) replaces the built-in one.
    configured = configured_reply(content.welcome)
    if configured is not None:
        return configured
    welcome = texts.welcome(content.bot.account_name, event, now, content.tz)
    menu = texts.help_menu(content.bot.account_name, event, content.help.topics)
    return Text(f"{welcome}\n\n{menu}")


@subscription_router.handler(EventType("unsubscribe"))
def handle_unsubscribe(follower: Follower) -> None:
    follower.subscribed = False
    return None
