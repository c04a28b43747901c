"""Venue: the address, plus a map link when configured; a shared location gets the same answer."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout, MessageType

venue_router = Router("venue")


@venue_router.handler(AsksAbout("venue"))
def handle_venue(event: Event, now: datetime, settings: Settings) -> Text:
    return Text(texts.venue_answer(event, now, settings.tz))


@venue_router.handler(MessageType("location"))
def handle_shared_location(event: Event, now: datetime, settings: Settings) -> Text:
    return Text(texts.location_answer(event, now, settings.tz))
