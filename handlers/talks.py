"""One talk: its abstract and outline, asked for by number (``1``, ``第二场``) or speaker's name."""

from datetime import datetime

from handlers.dispatch import Context, FilterResult, Router, needs_database
from handlers.matching import bare_number, normalise, talk_ordinal
from handlers.replies import Text
from models import texts
from models.content import Content, Event

talk_router = Router("talk")


def mentions_talk(context: Context) -> FilterResult:
    """Extracts ``talk_number`` from ``第二场`` or a speaker's name."""
    text = context.get("text")
    event: Event = context.get("event")
    if not text or not event.talks:
        return False
    number = talk_ordinal(text)
    if number is None:
        number = next(
            (index for index, talk in enumerate(event.talks, start=1) if normalise(talk.speaker) in text), None
        )
    return {"talk_number": number} if number is not None else False


def is_bare_number(context: Context) -> FilterResult:
    """Extracts ``talk_number`` from a message that is only a number ("2")."""
    number = bare_number(context.get("text"))
    return {"talk_number": number} if number is not None and context.get("event").talks else False


@needs_database
def after_agenda(context: Context) -> FilterResult:
    """Passes when the last list the follower saw was the agenda: their row says which ("议程" itself
    must not need it)."""
    return context.get("follower").last_list == "agenda"


@talk_router.handler(mentions_talk)
@talk_router.handler(is_bare_number, after_agenda)
def handle_talk(talk_number: int, event: Event, now: datetime, content: Content) -> Text:
    if not 1 <= talk_number <= len(event.talks):
        return Text(texts.no_such_talk(len(event.talks)))
    return Text(texts.talk_detail(talk_number, event.talks[talk_number - 1], event, now, content.tz))
