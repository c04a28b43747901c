"""Slides and replay: links when configured; otherwise when they will be shared."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout

materials_router = Router("materials")


@materials_router.handler(AsksAbout("materials"))
def handle_materials(event: Event, now: datetime, settings: Settings) -> Text:
    # Slides and replay are asked for after an event, even when the next one is already announced.
    finished = settings.content.latest_ended_event(now)
    return Text(texts.materials_answer(finished or event, now))
