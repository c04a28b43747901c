"""我的信息 and 删除我的信息 (also 注销, 删除数据): a follower sees what is kept about them, and erases it.

Erasure asks once, through the same form store as cancelling a registration; the data itself is erased
by ``models.privacy``, the stored replies by the reply ledger.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.dispatch import Context, FilterResult, Router, needs_database
from handlers.matching import AsksAbout, normalise
from handlers.registration import FORM_INPUT, inside_form, notify_promoted, open_flow, open_form
from handlers.registration_form import ERASE_STATE, Turn, close_form
from handlers.replies import Text
from models import texts
from models.content import Content, Event
from models.form_store import Form, FormStore
from models.kept_answers import kept_answers
from models.ledger import ReplyLedger, dedup_key
from models.privacy import erase_follower, follower_channel, registrations_of
from models.registration import FIELD_COLUMNS, Registration

personal_data_router = Router("personal_data")


@needs_database
def erase_confirmation_pending(context: Context) -> FilterResult:
    """Passes for the follower's answer to "确定删除吗"; extracts ``form``."""
    found = open_form(context)
    return found if found and found["form"].state == ERASE_STATE else False


@personal_data_router.handler(FORM_INPUT, inside_form, erase_confirmation_pending)
def handle_erase_confirmation(
    form: Form, message, raw_text: str, session: Session, ledger: ReplyLedger, content: Content, now: datetime
) -> Text:
    event = content.event_by_id(form.event_id) or content.current_event(now)
    turn = Turn(session, content, event, now, form, dedup_key(message))
    close_form(form)
    if normalise(raw_text) not in texts.CONFIRM_WORDS:
        return turn.reply(texts.ERASE_KEPT)
    erasure = erase_follower(session, form.openid, content, now)
    for promoted_event, promoted in erasure.promoted:
        notify_promoted(session, promoted_event, promoted, content)
    ledger.forget_follower(session, form.openid, turn.key)
    return turn.reply(texts.ERASED)


# Before 我的信息: "删除我的信息" contains it.
@personal_data_router.handler(AsksAbout("erase_personal_data"))
def handle_erase_request(
    message, event: Event, session: Session, forms: FormStore, content: Content, now: datetime
) -> Text:
    turn = open_flow(ERASE_STATE, message, event, session, forms, content, now)
    return turn.reply(texts.ERASE_CONFIRM_PROMPT)


@personal_data_router.handler(AsksAbout("my_personal_data"))
def handle_my_personal_data(openid: str, session: Session, content: Content, now: datetime) -> Text:
    records = [_record(registration, content) for registration in registrations_of(session, openid)]
    kept = kept_answers(session, openid, now)
    if kept is not None:
        heading = texts.kept_for_reuse_heading(_event_name(content, kept.event_id), kept.expires_at, content.tz)
        records.append((heading, texts.field_lines(kept.answers, FIELD_COLUMNS)))
    stand_in = texts.PERSONAL_DATA_STAND_IN if records else None
    return Text(texts.personal_data(records, follower_channel(session, openid)), stand_in)


def _event_name(content: Content, event_id: str) -> str:
    event = content.event_by_id(event_id)
    return event.name if event else event_id


def _record(registration: Registration, content: Content) -> tuple[str, list[tuple[str, str]]]:
    """One registration as 我的信息 lists it: its event and status, then each stored value."""
    heading = f"{_event_name(content, registration.event_id)}：{texts.STATUS_LABELS[registration.status]}"
    lines = texts.field_lines({name: getattr(registration, name) for name in FIELD_COLUMNS}, FIELD_COLUMNS)
    lines.append(("参加方式", texts.ATTENDANCE_LABELS[registration.attendance]))
    if registration.checked_in_at is not None:
        lines.append(("签到时间", texts.moment_text(registration.checked_in_at, content.tz)))
    if registration.consent_at is not None:
        lines.append(("同意告知时间", texts.moment_text(registration.consent_at, content.tz)))
    return heading, lines
