"""Time: date with weekday, start and end, and how long until it starts (or that it has ended)."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts
from models.content import Content, Event

time_router = Router("time")


@time_router.handler(AsksAbout("time"))
def handle_time(event: Event, now: datetime, content: Content) -> Text:
    return Text(texts.time_answer(event, now, content.tz))
