"""Now and next: who is speaking, when talk times are configured and the event is under way."""

from datetime import datetime

from bot.dispatch import Router
from bot.replies import Text
from bot.settings import Event, Settings
from handlers import texts
from handlers.matching import AsksAbout
from bot.activity import Activity

now_next_router = Router("now_next")


@now_next_router.handler(AsksAbout("now_next"))
def handle_now_next(event: Event, now: datetime, settings: Settings, activity: Activity) -> Text:
    answer = texts.now_next_answer(event, now, settings.tz)
    if answer is not None:
        return Text(answer)
    # No live schedule to tell: the overall time and agenda answer the question best.
    activity.last_list = "agenda"
    return Text(texts.time_answer(event, now, settings.tz) + "\n\n" + texts.agenda(event, settings.tz))
