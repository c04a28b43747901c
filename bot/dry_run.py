"""Answer one text as the bot would, on a throw-away database: for organisers checking their rules.

The text goes through the real responder (the same dispatcher, routers and rules as the webhook) of an
app built on a temporary SQLite database, so trying a text never touches the real followers' data.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.app import create_app
from bot.devtools.simulator import Reply, describe, parse_reply, push_xml
from bot.responder import Response
from bot.settings import Settings
from bot.wechat import parse_push
from handlers.rules import RuleMatch
from models.clock import Clock
from models.db import create_db_engine
from models.migrate import upgrade

DRY_RUN_OPENID = "eventbot-rules-test"


@dataclass(frozen=True)
class DryRun:
    """What answered a text (a rule, or a topic) and the reply as the follower would see it."""

    response: Response
    reply: Reply
    rule_match: RuleMatch | None

    def report(self) -> str:
        if self.rule_match is not None:
            match = self.rule_match
            name = f" {match.rule.name!r}" if match.rule.name else ""
            keyword = f", keyword {match.keyword.word!r} ({match.keyword.mode})" if match.keyword else ""
            source = f"rule {match.position}{name}{keyword}"
        elif self.response.topic == "unrecognised":
            source = "the default reply (no rule or topic matched)"
        elif self.response.topic == "inbox":
            source = "the organizers' inbox (a question no rule or topic answers)"
        else:
            source = f"topic {self.response.topic!r}"
        return f"answered by: {source}\nreply:\n{describe(self.reply)}"


def answer_offline(settings: Settings, text: str, clock: Clock) -> DryRun:
    """Send ``text`` through the real responder on a temporary database and report what answered."""
    with tempfile.TemporaryDirectory(prefix="eventbot-dry-run-") as folder:
        url = f"sqlite:///{Path(folder) / 'dry-run.db'}"
        upgrade(url)
        # No Redis either: the dry run must leave no trace in the deployment's stores.
        settings = settings.model_copy(update={"database_url": url, "redis_url": ""})
        engine = create_db_engine(url)
        try:
            responder = create_app(settings, clock=clock, engine=engine).state.services.responder
            message = parse_push(push_xml(DRY_RUN_OPENID, "text", {"Content": text, "MsgId": 1}))
            response = responder.respond(message)
        finally:
            engine.dispose()
    now = clock.now()
    rule_match = (
        responder.rules.match(text, now, settings.content.current_event(now).id) if response.topic == "rule" else None
    )
    return DryRun(response, parse_reply(200, response.xml or "success", None), rule_match)
