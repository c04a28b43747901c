"""Time: date with weekday, start and end, and how long until it starts (or that it has ended)."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout

time_router = Router("time")


@time_router.handler(AsksAbout("time"))
def handle_time(event: Event, now: datetime, settings: Settings) -> Text:
    return Text(texts.time_answer(event, now, settings.tz))
