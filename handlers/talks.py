"""One talk: its abstract and outline, asked for by number (``1``, ``第二场``) or speaker's name."""

from datetime import datetime

from handlers.dispatch import Context, FilterResult, Router, needs_database
from handlers.matching import bare_number, normalise, talk_ordinal
from handlers.replies import Text
from models import texts
from models.activity import Activity
from models.content import Content, Event
from models.text import compact, keywords_pattern

talk_router = Router("talk")


class TalkTags:
    """Every event's talk ``tags``, compiled once: which talks a message names by their content."""

    def __init__(self, content: Content) -> None:
        self._by_event = {}
        for event in content.events:
            talks_of: dict[str, set[int]] = {}
            for number, talk in enumerate(event.talks, start=1):
                for tag in talk.tags:
                    talks_of.setdefault(compact(normalise(tag)), set()).add(number)
            if talks_of:
                self._by_event[event.id] = (keywords_pattern(talks_of), talks_of)

    def talks_in(self, event_id: str, normalised: str) -> list[int]:
        """The numbers of the talks whose tags the text names, in agenda order."""
        found = self._by_event.get(event_id)
        if found is None or not normalised:
            return []
        pattern, talks_of = found
        return sorted({number for match in pattern.finditer(normalised) for number in talks_of[compact(match.group(0))]})


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


def mentions_talk_content(context: Context) -> FilterResult:
    """Extracts ``talk_numbers``: the talks a question names by content ("有没有讲 Kubernetes 的"), unless
    it asks about another topic too ("AIGC 活动几点开始" is about the time)."""
    if context.get("requested_topics") - {"agenda"}:
        return False
    numbers = context.get("talk_tags").talks_in(context.get("event").id, context.get("text"))
    return {"talk_numbers": numbers} if numbers else False


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


@talk_router.handler(mentions_talk_content)
def handle_talks_about(talk_numbers: list[int], event: Event, now: datetime, content: Content, activity: Activity) -> Text:
    if len(talk_numbers) == 1:
        return handle_talk(talk_numbers[0], event, now, content)
    # Numbered as in the agenda, so a bare number next opens one of them.
    activity.last_list = "agenda"
    return Text(texts.talks_about(event, talk_numbers, content.tz))
