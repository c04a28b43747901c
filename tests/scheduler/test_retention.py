"""The retention job: expired forms and ledger rows past WeChat's retry horizon go, in batches; the rest stays."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from models import Campaign, FormState, InboundMessage
from models.deliveries import LATE_REPLY_PURPOSE, enqueue_message
from models.retention import LEDGER_KEPT, prune_operational_state
from scheduler.jobs import JobQueue, retention_job
from tests.registration_steps import register_via_chat


def arrange(sessions, now: datetime) -> None:
    real_now = datetime.now(timezone.utc)
    with sessions.begin() as session:
        session.add_all([
            FormState(openid="o-open", state="phone", answers={}, expires_at=now + timedelta(minutes=5)),
            FormState(openid="o-closed-recently", state=None, answers={}, expires_at=now + timedelta(minutes=20)),
            *(FormState(openid=f"o-timed-out-{n}", state="name", answers={}, expires_at=now - timedelta(minutes=1))
              for n in range(3)),
            FormState(openid="o-closed-long-ago", state=None, answers={}, expires_at=None),
            InboundMessage(dedup_key="recent", reply_xml="", claimed_at=real_now - timedelta(minutes=1)),
            *(InboundMessage(dedup_key=f"old-{n}", reply_xml="", claimed_at=real_now - LEDGER_KEPT - timedelta(minutes=1))
              for n in range(3)),
        ])


def kept(sessions) -> tuple[set[str], set[str]]:
    with sessions() as session:
        return set(session.scalars(select(FormState.openid))), set(session.scalars(select(InboundMessage.dedup_key)))


def test_the_retention_job_deletes_expired_forms_and_old_ledger_rows(settings, sessions, engines, clock):
    arrange(sessions, clock.now())
    queue = JobQueue(settings, engines(), clock)

    retention_job(queue.services)

    assert kept(sessions) == ({"o-open", "o-closed-recently"}, {"recent"})


def test_pruning_goes_in_batches_until_nothing_is_left(sessions, clock):
    arrange(sessions, clock.now())

    pruned = prune_operational_state(sessions, clock.now(), batch_size=2)

    assert (pruned.form_states, pruned.inbound_messages) == (4, 3)
    assert kept(sessions) == ({"o-open", "o-closed-recently"}, {"recent"})


def test_a_closed_form_keeps_its_last_reply_for_a_form_lifetime_after_it_closed(app, wechat, clock, settings):
    lifetime = settings.content.registration.form_lifetime
    wechat.send_text("o-left", "报名")
    clock.advance(lifetime / 2)
    wechat.send_text("o-left", "退出")
    sessions = app.state.services.sessions

    clock.advance(lifetime * 3 / 4)  # past the form's own expiry, within a lifetime of 退出
    prune_operational_state(sessions, clock.now())
    assert "o-left" in kept(sessions)[0]  # a retry of 退出 still gets its reply

    clock.advance(lifetime / 4)
    prune_operational_state(sessions, clock.now())
    assert "o-left" not in kept(sessions)[0]


def test_a_reply_remembered_without_a_form_is_kept_a_form_lifetime_too(app, wechat, clock, settings):
    lifetime = settings.content.registration.form_lifetime
    register_via_chat(wechat, "o-switch")
    clock.advance(lifetime)
    sessions = app.state.services.sessions
    prune_operational_state(sessions, clock.now())
    assert "o-switch" not in kept(sessions)[0]

    assert "线上" in wechat.send_text("o-switch", "改为线上").content  # remembered on a new row
    prune_operational_state(sessions, clock.now())
    assert "o-switch" in kept(sessions)[0]


def test_a_late_reply_keeps_its_text_until_it_is_delivered(sessions, clock):
    with sessions.begin() as session:
        enqueue_message(session, openid="o-late", text="慢慢想好的回答", purpose=LATE_REPLY_PURPOSE, dedup_key="late-reply:1")

    assert prune_operational_state(sessions, clock.now()).late_replies == 0
    with sessions() as session:
        assert session.scalars(select(Campaign.text)).one() == "慢慢想好的回答"
