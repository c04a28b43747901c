"""Registration in the chat: the form, "my registration", cancelling, switching attendance.

The form is data, in the manner of python-telegram-bot's ConversationHandler: ``form_steps`` lists the
states in order, each with its question and what it accepts; ``FALLBACKS`` (取消/退出, 修改) apply at every
step of the form, and a Q&A question asked mid-form is answered before the pending question is asked
again. Progress lives in a ``FormStore`` (``form_states`` rows, whatever Redis does) keyed
by openid, so any worker continues any conversation and a restart loses nothing. Every reply that
follows an effect is remembered with the message's dedup key: a retry that gets past the reply ledger (a
Redis ledger stores the reply only after the commit) gets the same reply and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.dispatch import Context, FilterResult, Router, needs_database
from handlers.matching import (
    AsksAbout,
    KeywordIndex,
    MessageType,
    normalise,
)
from handlers.registration_form import (
    ATTENDANCE_STATE,
    CANCEL_STATE,
    CONFIRM_STATE,
    CONSENT_STATE,
    CONSENTED_AT,
    FALLBACKS,
    ONSITE_FULL,
    PHONE_SHARED,
    PROMOTION_PURPOSE,
    QUESTION_ANSWERS,
    REUSABLE,
    UNCONFIRMED,
    Invalid,
    Step,
    Turn,
    Unconfirmed,
    close_form,
    form_steps,
    leave_form,
    next_step,
    restart_form,
)
from handlers.replies import Text
from models import texts
from models.content import Content, Event
from models.deliveries import enqueue_message
from models.form_store import Form, FormStore
from models.kept_answers import keep_answers, take_kept_answers
from models.ledger import dedup_key
from models.organizer import notify_registration
from models.privacy import erase_fields
from models.registration import (
    CONFIRMED,
    ONLINE,
    ONSITE,
    AlreadyRegistered,
    Registration,
    active_registration,
    cancel,
    change_attendance,
    register,
    seats_taken,
)
from models.reminder import REMINDER_TEMPLATE_KEY

registration_router = Router("register")

CALENDAR_PATH = "/events/{event_id}.ics"
def calendar_url(content: Content, event: Event) -> str:
    """The link to the event's ``.ics`` file served by the bot, or "" when no public URL is configured."""
    base = content.bot.public_base_url.rstrip("/")
    return base + CALENDAR_PATH.format(event_id=event.id) if base else ""


SUBSCRIBE_PATH = "/subscribe/{event_id}"


def subscribe_url(content: Content, event: Event) -> str:
    """The page where a follower grants the 订阅通知 reminders need beyond 48 hours; "" when there is
    none to offer (no reminders, no 订阅通知 template for them, or no public URL)."""
    base = content.bot.public_base_url.rstrip("/")
    delivery = content.delivery
    offered = event.reminders and "subscribe" in delivery.channels and delivery.subscribe_templates.get(REMINDER_TEMPLATE_KEY)
    return base + SUBSCRIBE_PATH.format(event_id=event.id) if base and offered else ""


def registration_open(event: Event, now: datetime) -> bool:
    return now < event.registration_deadline and now < event.ends_at


def notify_promoted(session: Session, event: Event, promoted: list[Registration], content: Content) -> None:
    """Record a customer-service notice for everyone moved from the waitlist to a seat."""
    for registration in promoted:
        enqueue_message(
            session,
            openid=registration.openid,
            text=texts.promoted_from_waitlist(event, registration, content.tz),
            purpose=PROMOTION_PURPOSE,
            dedup_key=f"{PROMOTION_PURPOSE}:{registration.id}:{registration.updated_at.isoformat()}",
        )


def inside_form(context: Context) -> FilterResult:
    """Passes unless the follower is known to be outside any form (the content path knows it)."""
    return not context.get("outside_form")


def _form_of_sender(context: Context) -> Form | None:
    # Both filters below look at the same held form: one read per message, not one per filter.
    return context.remember(
        "held_form", lambda ctx: ctx.get("forms").held(ctx.get("session"), ctx.get("openid"))
    )


@needs_database
def replay_of_last(context: Context) -> FilterResult:
    """Passes for a message already answered (a retry the ledger did not catch); extracts ``form``."""
    form = _form_of_sender(context)
    if form is None or form.last_dedup_key != dedup_key(context.get("message")):
        return False
    return {"form": form}


@needs_database
def open_form(context: Context) -> FilterResult:
    """Passes while the follower is inside an unexpired form or confirmation; extracts ``form``."""
    form = _form_of_sender(context)
    return {"form": form} if form is not None and form.is_open(context.get("now")) else False


def asks_for_attendance(context: Context) -> FilterResult:
    """Passes for 改为线上 / 改为现场; extracts the wanted ``attendance``."""
    topics = context.get("requested_topics")
    if "attend_online" in topics:
        return {"attendance": ONLINE}
    if "attend_onsite" in topics:
        return {"attendance": ONSITE}
    return False


# Any text inside a form goes to the form, even a blank one (which the form refuses with a reason).
FORM_INPUT = MessageType("text", "voice")


@registration_router.handler(FORM_INPUT, inside_form, replay_of_last, topic="retry")
def handle_replayed_message(form: Form) -> Text:
    return Text(form.last_reply)


@registration_router.handler(FORM_INPUT, inside_form, open_form)
def handle_form_message(
    form: Form, message, raw_text: str, text: str, question: bool, keywords: KeywordIndex, session: Session,
    content: Content, now: datetime, admin_openids: frozenset[str],
) -> Text:
    event = content.event_by_id(form.event_id)
    turn = Turn(
        session, content, event or content.current_event(now), now, form, dedup_key(message), admin_openids
    )
    if event is None:  # the event left the configuration while the form was open
        return leave_form(turn, [])
    form.expires_at = now + content.registration.form_lifetime
    if form.state == CANCEL_STATE:
        return _answer_cancel_confirmation(turn, raw_text)
    steps = form_steps(content, event, onsite_full=bool(form.answers.get(ONSITE_FULL)))
    by_state = {step.state: step for step in steps}
    step = by_state.get(form.state)
    if step is None:  # the configured fields changed while the form was open
        return restart_form(turn, steps)
    for words, action in FALLBACKS:
        if text in words:
            return action(turn, steps)
    if UNCONFIRMED in form.answers:  # 是 takes the answer the step asked about; anything else is a new answer
        if text in texts.CONFIRM_WORDS:
            return _advance(turn, steps, step, form.answers[UNCONFIRMED])
        form.answers = {key: value for key, value in form.answers.items() if key != UNCONFIRMED}

    asked = keywords.topics_in(text) & QUESTION_ANSWERS.keys()
    # An answer wins over keywords (a job title of 讲师) unless the message is clearly a question: a
    # question about a topic ("时间？"), any question where free text is expected ("我是学生可以参加吗" is
    # no name), or a bare keyword where a name is expected ("地点"). Otherwise it is a question only when
    # the step cannot take it ("13号线大钟寺站" for a phone number).
    is_question = (
        (bool(asked) and question)
        or (step.free_text and question)
        or (step.keywords_are_questions and keywords.topic_of(text) is not None)
    )
    if not is_question:
        try:
            value = step.parse(raw_text)
        except Unconfirmed as unconfirmed:
            form.answers = {**form.answers, UNCONFIRMED: unconfirmed.value}
            turn.stand_in = unconfirmed.stand_in
            return turn.reply(str(unconfirmed))
        except Invalid as invalid:
            if not asked:
                return turn.reply(f"{invalid}\n{step.ask(turn)}")
        else:
            return _advance(turn, steps, step, value)
    answers = [answer(event, now, content.tz) for topic, answer in QUESTION_ANSWERS.items() if topic in asked]
    return turn.reply("\n\n".join([*(answers or [texts.FORM_HELP]), step.ask(turn)]))


def _advance(turn: Turn, steps: list[Step], step: Step, value: str) -> Text:
    """Keep the answer and ask the next question the form still needs; the confirmation step commits instead."""
    if step.state == CONFIRM_STATE:
        return _commit(turn)
    answers = {key: kept for key, kept in turn.form.answers.items() if key != UNCONFIRMED}
    note = step.keep(turn, answers, value, step.state)
    turn.form.answers = answers
    following = next_step(steps, answers, after=step)
    turn.form.state = following.state
    return turn.reply(f"{note}\n{following.ask(turn)}" if note else following.ask(turn))


def _commit(turn: Turn) -> Text:
    event, form = turn.event, turn.form
    answers = form.answers
    close_form(form)
    if not registration_open(event, turn.now):
        return turn.reply(texts.registration_closed(event, turn.now, turn.tz))
    attendance = answers.get(ATTENDANCE_STATE) or (ONSITE if event.has_venue_seats else ONLINE)
    try:
        registration = register(
            turn.session, event_id=event.id, openid=form.openid, answers=answers, attendance=attendance,
            capacity=event.capacity, now=turn.now, notice_version=answers.get(CONSENT_STATE),
            consent_at=datetime.fromisoformat(answers[CONSENTED_AT]) if CONSENTED_AT in answers else None,
        )
    except AlreadyRegistered as already:
        return turn.reply(texts.already_registered(event, already.registration, turn.tz))
    notify_registration(
        turn.session, turn.content, turn.admin_openids, event, registration, phone_shared=answers.get(PHONE_SHARED, False)
    )
    done = texts.registration_done(event, registration, turn.tz, calendar_url(turn.content, event))
    grant_link = subscribe_url(turn.content, event) if registration.status == CONFIRMED else ""
    return turn.reply(f"{done}\n\n{texts.subscribe_invitation(grant_link)}" if grant_link else done)


def _answer_cancel_confirmation(turn: Turn, raw_text: str) -> Text:
    event = turn.event
    close_form(turn.form)
    if normalise(raw_text) not in texts.CONFIRM_WORDS:
        return turn.reply(texts.CANCEL_KEPT)
    registration = active_registration(turn.session, event.id, turn.form.openid)
    refusal = _refusal_to_change(registration, event, turn.now, turn.tz)
    if refusal is not None:
        return turn.reply(refusal)
    change = cancel(turn.session, registration, capacity=event.capacity, now=turn.now)
    # The organizers' copy of the answers goes (the row stays, for the counts); the follower's own copy is
    # kept apart for their next 报名, as long as registering is still possible.
    closes = min(event.registration_deadline, event.ends_at)
    kept = turn.now < closes and keep_answers(turn.session, registration, closes)
    erase_fields(registration, turn.now)
    notify_promoted(turn.session, event, change.promoted, turn.content)
    return turn.reply(texts.registration_cancelled(event, kept))


def not_registered(event: Event, now: datetime, tz) -> str:
    """What someone without a registration is told: how to register, only while that is still possible."""
    if registration_open(event, now):
        return texts.NOT_REGISTERED
    return texts.NOT_REGISTERED_ENDED if now >= event.ends_at else texts.registration_closed(event, now, tz)


def _refusal_to_change(registration: Registration | None, event: Event, now: datetime, tz) -> str | None:
    """Why the follower's registration cannot be cancelled or switched now, or None when it can."""
    if registration is None:
        return not_registered(event, now, tz)
    if now >= event.starts_at:
        return texts.CHANGES_CLOSED
    return None


def open_flow(
    state: str, message, event: Event, session: Session, forms: FormStore, content: Content, now: datetime
) -> Turn:
    """Put the follower at ``state`` of a fresh flow (the form, or a confirmation: cancel, erase)."""
    form = forms.held(session, message.source, create=True)
    form.state, form.event_id, form.answers = state, event.id, {}
    form.expires_at = now + content.registration.form_lifetime
    return Turn(session, content, event, now, form, dedup_key(message))


@registration_router.handler(AsksAbout("cancel_registration"), topic="cancel_registration")
def handle_cancel_request(
    message, event: Event, openid: str, session: Session, forms: FormStore, content: Content, now: datetime
) -> Text:
    registration = active_registration(session, event.id, openid)
    refusal = _refusal_to_change(registration, event, now, content.tz)
    if refusal is not None:
        return Text(refusal)
    turn = open_flow(CANCEL_STATE, message, event, session, forms, content, now)
    return turn.reply(f"{texts.registration_record(event, registration, content.tz)}\n\n{texts.CANCEL_CONFIRM_PROMPT}")


@registration_router.handler(asks_for_attendance)
def handle_attendance_change(
    attendance: str, message, event: Event, openid: str, session: Session, forms: FormStore, content: Content,
    now: datetime,
) -> Text:
    registration = active_registration(session, event.id, openid)
    refusal = _refusal_to_change(registration, event, now, content.tz)
    if refusal is not None:
        return Text(refusal)
    if not event.offers_attendance_choice or registration.attendance == attendance:
        return Text(texts.attendance_unchanged(registration.attendance))
    # The follower's form before the event lock, in the order every other path takes them.
    turn = Turn(session, content, event, now, forms.held(session, openid, create=True), dedup_key(message))
    change = change_attendance(session, registration, attendance, capacity=event.capacity, now=now)
    notify_promoted(session, event, change.promoted, content)
    return turn.reply(texts.attendance_changed(event, change.registration, content.tz))


@registration_router.handler(AsksAbout("my_registration"), topic="my_registration")
def handle_my_registration(event: Event, openid: str, session: Session, content: Content, now: datetime) -> Text:
    registration = active_registration(session, event.id, openid)
    if registration is None:
        return Text(not_registered(event, now, content.tz))
    return Text(texts.registration_record(event, registration, content.tz, calendar_url(content, event)))


@registration_router.handler(AsksAbout("register"))
def handle_register(
    message, event: Event, openid: str, session: Session, forms: FormStore, content: Content, now: datetime
) -> Text:
    # After the event, no talk of registering (nor of having registered): it is over.
    if now >= event.ends_at:
        return Text(texts.registration_closed(event, now, content.tz))
    registration = active_registration(session, event.id, openid)
    if registration is not None:
        return Text(texts.already_registered(event, registration, content.tz))
    if not registration_open(event, now):
        return Text(texts.registration_closed(event, now, content.tz))
    # Read here, when the form opens, not at every step: whether the seats are taken, and what the
    # follower typed before cancelling.
    answers = {}
    onsite_full = event.has_venue_seats and seats_taken(session, event.id) >= event.capacity
    if onsite_full:
        answers[ONSITE_FULL] = True
    reusable = take_kept_answers(session, openid, event.id, now)
    if reusable:
        answers[REUSABLE] = reusable
    first = next_step(form_steps(content, event, onsite_full=onsite_full), answers)
    turn = open_flow(first.state, message, event, session, forms, content, now)
    turn.form.answers = answers
    # Without a livestream there is nothing to choose: the follower learns they will wait.
    full = f"\n{texts.ONSITE_FULL_WAITLIST}" if onsite_full and not event.offers_attendance_choice else ""
    return turn.reply(f"{texts.form_intro(event)}{full}\n{first.ask(turn)}")
