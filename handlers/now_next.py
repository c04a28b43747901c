"""Now and next: who is speaking, when talk times are configured and the event is under way."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts
from models.content import Content, Event

now_next_router = Router("now_next")


@now_next_router.handler(AsksAbout("now_next"))
def handle_now_next(event: Event, now: datetime, content: Content) -> Text:
    answer = texts.now_next_answer(event, now, content.tz)
    return Text(answer if answer is not None else texts.now_untimed(event, now, content.tz))
