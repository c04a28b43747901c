"""Follow and unfollow: a welcome about the current event, and the QR scene recorded as the channel."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import EventType
from models import Follower

subscription_router = Router("subscribe")

QR_SCENE_PREFIX = "qrscene_"


@subscription_router.handler(EventType("subscribe", "subscribe_scan"))
def handle_subscribe(message, event: Event, now: datetime, settings: Settings, follower: Follower) -> Text:
    # wechatpy strips "qrscene_" and calls the event subscribe_scan; a plain subscribe may still carry it.
    scene = message.scene_id if message.event == "subscribe_scan" else message.key.removeprefix(QR_SCENE_PREFIX)
    if scene and follower.channel is None:
        follower.channel = scene[:64]
    follower.subscribed = True
    follower.last_list = "help"
    welcome = texts.welcome(settings.content.bot.account_name, event, now, settings.tz)
    menu = texts.help_menu(settings.content.bot.account_name, event, settings.content.help.topics)
    return Text(f"{welcome}\n\n{menu}")


@subscription_router.handler(EventType("unsubscribe"))
def handle_unsubscribe(follower: Follower) -> None:
    follower.subscribed = False
    return None
