"""One talk: its abstract and outline, asked for by number (``1``, ``第二场``) or speaker's name."""

from datetime import datetime

from handlers.dispatch import Context, FilterResult, Router
from handlers.matching import bare_number, normalise, talk_ordinal
from handlers.replies import Text
from models import texts
from models.content import Content, Event

talk_router = Router("talk")


def mentions_talk(context: Context) -> FilterResult:
    """Extracts ``talk_number`` from ``第二场``, a speaker's name, or a bare number after the agenda."""
    text = context.get("text")
    event: Event = context.get("event")
    if not text or not event.talks:
        return False
    number = talk_ordinal(text)
    # Only a bare number needs the follower's row (which list they saw last): "议程" itself must not.
    if number is None and (bare := bare_number(text)) is not None and context.get("follower").last_list == "agenda":
        number = bare
    if number is None:
        number = next(
            (index for index, talk in enumerate(event.talks, start=1) if normalise(talk.speaker) in text), None
        )
    return {"talk_number": number} if number is not None else False


@talk_router.handler(mentions_talk)
def handle_talk(talk_number: int, event: Event, now: datetime, content: Content) -> Text:
    if not 1 <= talk_number <= len(event.talks):
        return Text(texts.no_such_talk(len(event.talks)))
    return Text(texts.talk_detail(talk_number, event.talks[talk_number - 1], event, now, content.tz))
