"""From a parsed message to its reply: de-duplication, dispatch, follower bookkeeping, rendering.

Framework-free and synchronous (it runs in a worker thread): the webhook calls ``Responder.respond``,
and so do the chat simulator and the tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
import time

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.dispatch import Context, Dispatcher
from bot.ledger import ClaimState, ReplyLedger, dedup_key
from bot.logs import hash_openid
from bot.replies import Reply, Text, render_reply
from bot.settings import Settings
from handlers import texts
from handlers.matching import KeywordIndex, normalise, requested_topics
from handlers.rules import RuleMatcher
from models.follower import get_or_create_follower

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


class Responder:
    """Answers one parsed WeChat message, at most once per message whatever the retries."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: sessionmaker[Session],
        ledger: ReplyLedger,
        dispatcher: Dispatcher,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.keywords = KeywordIndex(settings.content.keywords)
        self.rules = RuleMatcher(settings.content.rules)

    def respond(self, message) -> Response:
        """The reply for ``message``; a retry gets the first reply, or ``success`` while it is in progress."""
        key = dedup_key(message)
        try:
            with self.sessions.begin() as session:
                claim = self.ledger.claim(session, key)
                if claim.state is ClaimState.ANSWERED:
                    return Response(claim.reply_xml, None, "retry", message.source)
                if claim.state is ClaimState.IN_PROGRESS:
                    return Response("", None, "retry", message.source)
                response = self._handle(session, message)
                self.ledger.record(session, key, response.xml)
            return response
        except Exception:
            # One place where handler errors surface: logged with the message's context, never swallowed
            # silently; the claim is released so WeChat's retry is handled afresh.
            logger.exception(
                "handler failed",
                extra={"msg_type": message.type, "msg_id": message.id, "openid_hash": hash_openid(message.source)},
            )
            self.ledger.release(key)
            return Response(self._render(message, Text(texts.HANDLER_FAILED)), None, "error", message.source)

    def _handle(self, session: Session, message) -> Response:
        now = self.clock.now()
        words = words_of(message)
        context = Context(
            {
                "message": message,
                "openid": message.source,
                "raw_text": words,
                "text": normalise(words),
                "settings": self.settings,
                "keywords": self.keywords,
                "rules": self.rules,
                "now": now,
                "clock": self.clock,
                "event": self.settings.content.current_event(now),
                "session": session,
            },
            lazy={
                "follower": lambda _: get_or_create_follower(session, message.source, now),
                "requested_topics": requested_topics,
            },
        )
        if not (message.type == "event" and message.event in NOT_INTERACTIONS):
            context.get("follower").last_interaction_at = now
        outcome = self.dispatcher.dispatch(context)
        xml = self._render(message, outcome.reply) if outcome.reply is not None else ""
        return Response(xml, outcome.reply, outcome.topic, message.source)

    def _render(self, message, reply: Reply) -> str:
        return render_reply(
            reply, to_user=message.source, from_user=message.target, create_time=int(time.time())
        )

