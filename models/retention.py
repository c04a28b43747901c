"""Retention of operational state: rows that only served a conversation or WeChat's retries, deleted in
batches once nothing can need them (the scheduler's ``retention_job`` calls this).

- ``form_states``: a row whose expiry has passed (its form timed out, or closed that long after its last
  step, which ``close_form`` keeps) or that never had one. The next message simply starts afresh.
- ``kept_answers``: a follower's answers kept after 取消报名, once registration for the event has closed.
- ``inbound_messages``: ledger rows older than ``LEDGER_KEPT``. WeChat retries a message three times
  within about 15 seconds of the first delivery, but the same signed push is accepted again for as long as
  its timestamp is fresh (300 s either side, so up to 600 s after the first delivery): a row must outlive
  that, or such a re-delivery would be handled twice. ``LEDGER_KEPT`` is therefore the signed pairs' own
  horizon, 660 s (the last minute is the margin for the retention job's period and clock steps); no
  longer, since the rows are kept only for retries.
- late replies (a reply that overran WeChat's 5 s, sent as a customer-service text through the outbox): the
  text, once the delivery is finished; the row stays for its outcome. Like a stored reply, it may hold
  personal fields (the form's summary, 我的信息).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import InboundMessage
from models.deliveries import LATE_REPLY_PURPOSE
from models.kept_answers import KeptAnswers
from models.outbox import FINISHED_STATES, Campaign, Delivery
from models.push_bindings import BINDING_KEPT
from models.registration import FormState

LEDGER_KEPT = BINDING_KEPT
# Rows per transaction: short enough that no message waits long on the locks of a batch.
BATCH_SIZE = 1000

_FORMS = FormState.__table__
_KEPT = KeptAnswers.__table__
_LEDGER = InboundMessage.__table__


@dataclass(frozen=True)
class Pruned:
    form_states: int
    inbound_messages: int
    late_replies: int
    kept_answers: int


def prune_operational_state(sessions: sessionmaker[Session], now: datetime, *, batch_size: int = BATCH_SIZE) -> Pruned:
    """Delete expired forms and kept answers (``now`` on the event clock) and ledger rows past the retry
    horizon (real time); forget the text of late replies delivered."""
    expired_form = or_(_FORMS.c.expires_at.is_(None), _FORMS.c.expires_at <= now)
    old_claim = _LEDGER.c.claimed_at < datetime.now(timezone.utc) - LEDGER_KEPT
    return Pruned(
        form_states=_delete_in_batches(sessions, _FORMS.c.openid, expired_form, batch_size),
        inbound_messages=_delete_in_batches(sessions, _LEDGER.c.dedup_key, old_claim, batch_size),
        late_replies=_forget_delivered_late_replies(sessions),
        kept_answers=_delete_in_batches(sessions, _KEPT.c.openid, _KEPT.c.expires_at <= now, batch_size),
    )


def _forget_delivered_late_replies(sessions: sessionmaker[Session]) -> int:
    # Few (a late reply is a handler overrunning 5 s): one statement, no batches.
    waiting = exists().where(Delivery.campaign_id == Campaign.id, Delivery.status.not_in(FINISHED_STATES))
    with sessions.begin() as session:
        return session.execute(
            update(Campaign).where(Campaign.purpose == LATE_REPLY_PURPOSE, Campaign.text != "", ~waiting).values(text="")
        ).rowcount


def _delete_in_batches(sessions: sessionmaker[Session], key, condition, batch_size: int) -> int:
    table = key.table
    deleted = 0
    while True:
        with sessions.begin() as session:
            chosen = select(key).where(condition).limit(batch_size)
            count = session.execute(delete(table).where(key.in_(chosen), condition)).rowcount
        deleted += count
        if count < batch_size:
            return deleted
