"""Agenda: all talks with speaker and title."""

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout
from bot.activity import Activity

agenda_router = Router("agenda")


@agenda_router.handler(AsksAbout("agenda"))
def handle_agenda(event: Event, settings: Settings, activity: Activity) -> Text:
    # The talks are numbered in this reply, so a bare number next answers this list.
    activity.last_list = "agenda"
    return Text(texts.agenda(event, settings.tz))
