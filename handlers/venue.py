"""Venue: the address, plus a map link when configured; a shared location gets the same answer."""

from datetime import datetime

from handlers.dispatch import Router
from handlers.matching import AsksAbout, MessageType
from handlers.replies import Text
from models import texts
from models.content import Content, Event

venue_router = Router("venue")


@venue_router.handler(AsksAbout("venue"))
def handle_venue(event: Event, now: datetime, content: Content) -> Text:
    return Text(texts.venue_answer(event, now, content.tz))


@venue_router.handler(MessageType("location"))
def handle_shared_location(event: Event, now: datetime, content: Content) -> Text:
    return Text(texts.location_answer(event, now, content.tz))
