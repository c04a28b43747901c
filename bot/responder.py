"""From a parsed message to its reply: de-duplication, dispatch, follower bookkeeping, rendering.

Framework-free and synchronous: the webhook calls ``answer_from_content`` on its event loop and, when
that cannot answer, ``respond_with_database`` in a worker thread; the chat simulator and the tests call
``respond``, which does the same.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from handlers.dispatch import Context, Dispatcher, Outcome
from handlers.matching import KeywordIndex, asks_question, keyword_mentions, normalise, requested_topics
from handlers.replies import Reply, Text, render_reply
from handlers.rules import RuleMatcher
from handlers.talks import TalkTags
from models import Follower, texts
from models.activity import Activity, ActivityRecorder
from models.clock import Clock
from models.follower import get_or_create_follower
from models.form_presence import FormPresence
from models.form_store import FormStore
from models.ledger import ClaimState, ReplyLedger, dedup_key
from models.redact import hash_openid

logger = logging.getLogger(__name__)

# Pushes WeChat sends about the account's own activity: not the follower talking to the account, so they
# neither open WeChat's 48-hour customer-service window nor create a follower record.
NOT_INTERACTIONS = frozenset(
    {"templatesendjobfinish", "masssendjobfinish", "freepublishjobfinish", "subscribe_msg_sent_event", "unsubscribe"}
)


@dataclass(frozen=True)
class Response:
    """What to answer WeChat with: ``xml`` ("" means ``success``), and the reply behind it."""

    xml: str
    reply: Reply | None
    topic: str
    openid: str


def words_of(message) -> str:
    """The words a message carries: text content, or a voice message's recognition result."""
    if message.type == "text":
        return message.content or ""
    if message.type == "voice":
        return message.recognition or ""
    return ""


# How long a content answer is given again to the same question (on the event clock).
ANSWER_REUSE = timedelta(seconds=1)
RECENT_ANSWERS_KEPT = 1024


def what_was_asked(message) -> tuple:
    """Everything a content answer may depend on besides the time: the kind of push and its words or key.

    Content handlers see the follower only through ``Activity`` and never read the sender, so two
    followers asking the same thing at the same moment get the same answer.
    """
    data = message._data
    return (data.get("MsgType"), data.get("Event"), data.get("EventKey"), words_of(message))


@dataclass(frozen=True)
class ContentAnswer:
    """A content answer, and the numbered list it showed (for the follower's ``Activity``). ``outcome``
    None: a handler on the way needs the database ("报名" from two thousand followers: tried once)."""

    outcome: Outcome | None
    last_list: str | None


class RecentAnswers:
    """Content answers of the last ``ANSWER_REUSE``, by question.

    After a broadcast, thousands of followers send the same few words within seconds, and the answer is
    the same for all of them: it is worked out once a second, not once a message. Hand-written rather
    than ``cachetools.TTLCache``: an entry holds only while the *event* clock is within ``ANSWER_REUSE``
    after the moment it was worked out, and the clock seam may move that clock backwards too. Plain dict
    operations, safe from any thread; when full it starts afresh (questions are few).
    """

    def __init__(self) -> None:
        self._answers: dict[tuple, tuple[datetime, ContentAnswer]] = {}

    def get(self, question: tuple, now: datetime) -> ContentAnswer | None:
        """The answer worked out for ``question`` shortly before ``now``, if any."""
        found = self._answers.get(question)
        if found is None:
            return None
        worked_out_at, answer = found
        return answer if timedelta(0) <= now - worked_out_at < ANSWER_REUSE else None

    def put(self, question: tuple, now: datetime, answer: ContentAnswer) -> None:
        if len(self._answers) >= RECENT_ANSWERS_KEPT:
            self._answers = {}
        self._answers[question] = (now, answer)


class Responder:
    """Answers one parsed WeChat message, at most once per message whatever the retries.

    Two paths. Most messages are questions whose answer comes from the configuration and the clock alone
    (agenda, time, venue …): ``answer_from_content`` answers them with no transaction and no ledger entry
    (answering WeChat's retry of a question again changes nothing), and queues the follower's activity for
    the ``ActivityRecorder``. Everything else, and every message from a follower who may be inside a form,
    goes through ``respond_with_database``: one transaction with the ledger claim, the handler's effects
    and the stored reply.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: sessionmaker[Session],
        ledger: ReplyLedger,
        dispatcher: Dispatcher,
        *,
        activity: ActivityRecorder,
        forms: FormStore,
        presence: FormPresence | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.forms = forms
        # No presence check, no content path: every message takes the database path.
        self.presence = presence
        self.activity = activity
        self.recent_answers = RecentAnswers()
        self.keywords = KeywordIndex(settings.content.keywords)
        self.rules = RuleMatcher(settings.content.rules)
        self.talk_tags = TalkTags(settings.content)

    def respond(self, message, *, sender_verified: bool = True) -> Response:
        """The reply for ``message``, by whichever path can give it."""
        return self.answer_from_content(message) or self.respond_with_database(message, sender_verified=sender_verified)

    def may_answer_from_content(self, message) -> bool:
        """Whether the content path may be tried: the follower's form presence can be checked, and the
        sender is no organizer (their words may be commands, which depend on who asks)."""
        return self.presence is not None and message.source not in self.settings.admin_openids

    def answer_from_content(self, message, *, checked_outside_form: bool = False) -> Response | None:
        """The reply when no handler on the way needs the database, else None. Cheap enough to run on
        the event loop: no transaction. ``checked_outside_form``: the caller already learnt that
        ``may_answer_from_content`` holds and that the follower is outside any form."""
        now = self.clock.now()
        if not checked_outside_form and (
            not self.may_answer_from_content(message) or self.presence.may_be_open(message.source, now)
        ):
            return None
        question = what_was_asked(message)
        answer = self.recent_answers.get(question, now)
        if answer is None:
            activity = Activity(message.source, now)
            try:
                outcome = self.dispatcher.dispatch(self._context(message, now, activity, session=None))
            except Exception:
                return self._failed(message)
            answer = ContentAnswer(outcome, activity.last_list)
            self.recent_answers.put(question, now, answer)
        if answer.outcome is None:
            return None
        if is_interaction(message):
            self.activity.record(Activity(message.source, now, answer.last_list))
        return self._response(message, answer.outcome)

    def respond_with_database(self, message, *, sender_verified: bool = True) -> Response:
        """The reply for ``message`` inside one transaction; a retry gets the first reply, or ``success``
        while it is in progress. ``sender_verified`` False: a plaintext push while safe mode is configured,
        whose openid nobody signed (handlers that change state for organizers refuse it)."""
        key = dedup_key(message)
        try:
            with self.sessions.begin() as session:
                claim = self.ledger.claim(session, key, message.source)
                if claim.state is ClaimState.ANSWERED:
                    return Response(claim.reply_xml, None, "retry", message.source)
                if claim.state is ClaimState.IN_PROGRESS:
                    return Response("", None, "retry", message.source)
                response = self._handle(session, message, sender_verified)
                self.ledger.record(session, key, self._kept_for_retry(message, response))
            return response
        except Exception:
            # The claim is released so WeChat's retry is handled afresh.
            self.ledger.release(key)
            return self._failed(message)

    def _handle(self, session: Session, message, sender_verified: bool) -> Response:
        now = self.clock.now()
        activity = Activity(message.source, now)
        context = self._context(message, now, activity, session=session, sender_verified=sender_verified)
        outcome = self.dispatcher.dispatch(context)
        if is_interaction(message):
            if context.computed("follower"):
                activity.apply_to(context.get("follower"))
            else:
                # No handler needed the row: no statement for it in this transaction either (a form
                # step's transaction is then only the form and the ledger); it is written behind.
                self.activity.record(activity)
        return self._response(message, outcome)

    def _follower(self, session: Session, openid: str, now: datetime) -> Follower:
        follower = get_or_create_follower(session, openid, now)
        # What this process queued for the follower first, so that "议程" then "2" sees the agenda.
        queued = self.activity.take(openid)
        if queued is not None:
            queued.apply_to(follower)
        return follower

    def _context(
        self, message, now, activity: Activity, *, session: Session | None, sender_verified: bool = True
    ) -> Context:
        words = words_of(message)
        values = {
            "message": message,
            "openid": message.source,
            "raw_text": words,
            "text": normalise(words),
            "content": self.settings.content,
            "admin_openids": self.settings.admin_openids,
            "keywords": self.keywords,
            "rules": self.rules,
            "talk_tags": self.talk_tags,
            "now": now,
            "clock": self.clock,
            "event": self.settings.content.current_event(now),
            "activity": activity,
            # The content path runs only for followers known to be outside any form.
            "outside_form": session is None,
            "forms": self.forms,
            "sender_verified": sender_verified,
            "ledger": self.ledger,
        }
        lazy = {"requested_topics": requested_topics, "mentions": keyword_mentions, "question": asks_question}
        if session is None:
            return Context(values, lazy)
        values["session"] = session
        lazy["follower"] = lambda _: self._follower(session, message.source, now)
        return Context(values, lazy)

    def notice(self, message, words: str | None) -> Response:
        """A reply of the webhook's own, not a handler's (``words`` None: ``success``); topic rate_limited."""
        xml = self._render(message, Text(words)) if words is not None else ""
        return Response(xml, None, "rate_limited", message.source)

    def _response(self, message, outcome) -> Response:
        xml = self._render(message, outcome.reply) if outcome.reply is not None else ""
        return Response(xml, outcome.reply, outcome.topic, message.source)

    def _kept_for_retry(self, message, response: Response) -> str:
        """The XML the ledger keeps for WeChat's retry: the reply's stand-in when it holds personal fields."""
        reply = response.reply
        if isinstance(reply, Text) and reply.stand_in is not None:
            return self._render(message, Text(reply.stand_in))
        return response.xml

    def _failed(self, message) -> Response:
        # One place where handler errors surface: logged with the message's context, never swallowed
        # silently, and the follower gets an apology rather than silence.
        logger.exception(
            "handler failed",
            extra={"msg_type": message.type, "msg_id": message.id, "openid_hash": hash_openid(message.source)},
        )
        return Response(self._render(message, Text(texts.HANDLER_FAILED)), None, "error", message.source)

    def _render(self, message, reply: Reply) -> str:
        return render_reply(
            reply, to_user=message.source, from_user=message.target, create_time=int(time.time())
        )


def is_interaction(message) -> bool:
    """Whether the push is the follower acting (it opens WeChat's 48-hour window), not a system notice."""
    return not (message.type == "event" and message.event in NOT_INTERACTIONS)
