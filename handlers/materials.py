"""Slides and replay: links when configured; otherwise when they will be shared."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event
from handlers import texts
from handlers.matching import AsksAbout

materials_router = Router("materials")


@materials_router.handler(AsksAbout("materials"))
def handle_materials(event: Event, now: datetime) -> Text:
    return Text(texts.materials_answer(event, now))
