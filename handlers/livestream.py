"""Format and livestream: offline + online, the stream link when configured."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout

livestream_router = Router("livestream")


@livestream_router.handler(AsksAbout("livestream"))
def handle_livestream(event: Event, now: datetime, settings: Settings) -> Text:
    return Text(texts.livestream_answer(event, now, settings.tz))
