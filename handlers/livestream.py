"""Format and livestream: offline + online, the stream link when configured."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts
from models.content import Content, Event

livestream_router = Router("livestream")


@livestream_router.handler(AsksAbout("livestream"))
def handle_livestream(event: Event, now: datetime, content: Content) -> Text:
    return Text(texts.livestream_answer(event, now, content.tz))
