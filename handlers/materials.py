"""Slides and replay: links when configured; otherwise when they will be shared."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts
from models.content import Content, Event

materials_router = Router("materials")


@materials_router.handler(AsksAbout("materials"))
def handle_materials(event: Event, now: datetime, content: Content) -> Text:
    # Slides and replay are asked for after an event, even when the next one is already announced.
    finished = content.latest_ended_event(now)
    return Text(texts.materials_answer(finished or event, now))
