"""Agenda: all talks with speaker and title."""

from handlers.dispatch import Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts
from models.activity import Activity
from models.content import Content, Event

agenda_router = Router("agenda")


@agenda_router.handler(AsksAbout("agenda"))
def handle_agenda(event: Event, content: Content, activity: Activity) -> Text:
    # The talks are numbered in this reply, so a bare number next answers this list.
    activity.last_list = "agenda"
    return Text(texts.agenda(event, content.tz))
