"""Help and anything unrecognised: a numbered menu of what the bot can do, never silence."""

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.dispatch import Context, FilterResult, Router
from handlers.matching import AsksAbout, EventType, MessageType, has_text
from handlers.replies import Reply, Text
from handlers.rules import configured_reply
from models import Follower, texts
from models.activity import Activity
from models.content import Content, Event
from models.inbox import store_question

help_router = Router("help")


def _menu(content: Content, event: Event, activity: Activity) -> Text:
    activity.last_list = "help"
    return Text(texts.help_menu(content.bot.account_name, event, content.help.topics))


# A menu key the config does not map is answered with the menu too: the follower pressed something.
@help_router.handler(EventType("click"), topic="unmapped_click")
@help_router.handler(AsksAbout("help"))
def handle_help(content: Content, event: Event, activity: Activity) -> Text:
    return _menu(content, event, activity)


def asks_question(context: Context) -> FilterResult:
    """Passes for a question (a question mark or word) no rule or topic answered."""
    return context.get("question") and bool(context.get("text"))


@help_router.handler(has_text, asks_question, topic="inbox")
def handle_unanswered_question(
    content: Content, event: Event, openid: str, raw_text: str, text: str, session: Session, now: datetime
) -> Text:
    """Keep the question for the organizers, and say so."""
    store_question(session, event_id=event.id, openid=openid, text=raw_text.strip(), words=text, now=now)
    return Text(texts.passed_to_organizers(texts.help_menu(content.bot.account_name, event, content.help.topics)))


@help_router.handler(has_text, topic="unrecognised")
def handle_unrecognised_text(
    content: Content, event: Event, follower: Follower, activity: Activity, now: datetime
) -> Reply:
    """The default reply (``[default_reply]``, else the help menu), at most once per follower per interval."""
    default = content.default_reply
    if follower.default_reply_at is not None and now - follower.default_reply_at < default.interval:
        return Text(texts.HELP_POINTER)
    follower.default_reply_at = now
    return configured_reply(default) or _menu(content, event, activity)


@help_router.handler(MessageType("image", "voice", "video", "shortvideo", "link", "miniprogrampage"), topic="media")
def handle_media(message) -> Text:
    return Text(texts.UNSUPPORTED_MEDIA.get(message.type, texts.MEDIA_FALLBACK) + texts.TRY_KEYWORDS)
