"""Follow and unfollow: a welcome about the current event, and the QR scene recorded as the channel."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import EventType, checkin_scene, qr_scene
from models import Follower

subscription_router = Router("subscribe")


def _not_checkin(context) -> bool:
    # Following by scanning the check-in code is a check-in (registration router), not a channel.
    return not checkin_scene(context)


@subscription_router.handler(EventType("subscribe", "subscribe_scan"), _not_checkin)
def handle_subscribe(message, event: Event, now: datetime, settings: Settings, follower: Follower) -> Text:
    scene = qr_scene(message)
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
