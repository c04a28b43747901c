"""The registration form as data, in the manner of python-telegram-bot's ConversationHandler: ``form_steps``
lists the states in order, each with its question and what it accepts; ``FALLBACKS`` (取消/退出, 修改)
apply at every step. The handlers that drive it are in ``handlers.registration``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from handlers.matching import (
    normalise,
)
from handlers.replies import Text
from models import texts
from models.content import Content, Event
from models.form_store import Form
from models.kept_answers import CONSENT_AT, NOTICE_VERSION
from models.registration import phone_registered_by_another

CONSENT_STATE = "consent"
# Where the form keeps when the follower agreed to the notice (the notice's version is under CONSENT_STATE).
CONSENTED_AT = "consented_at"
CONFIRM_STATE = "confirm"
ATTENDANCE_STATE = "attendance"
# 「用上次的信息报名？」, asked when the form holds the answers of a cancelled registration (REUSABLE).
REUSE_STATE = "reuse"
# What the form keeps beside the steps' answers:
REUSABLE = "reusable"  # the answers kept after 取消报名 (``models.kept_answers``), until the follower chooses
ONSITE_FULL = "onsite_full"  # the seats were taken when the form opened: attendance is asked first
UNCONFIRMED = "unconfirmed"  # an answer the step takes only once confirmed (a lone letter as a name)
PHONE_SHARED = "phone_shared"  # another follower's active registration for the event has this phone
CANCEL_STATE = "cancel_registration"
ERASE_STATE = "erase_personal_data"
PROMOTION_PURPOSE = "waitlist_promotion"

# Topics a follower may ask about in the middle of the form, and how each is answered.
QUESTION_ANSWERS: dict[str, Callable[[Event, datetime, object], str]] = {
    "agenda": lambda event, now, tz: texts.agenda(event, tz),
    "time": texts.time_answer,
    "venue": texts.venue_answer,
    "livestream": texts.livestream_answer,
    "materials": lambda event, now, tz: texts.materials_answer(event, now),
    "now_next": lambda event, now, tz: texts.now_next_answer(event, now, tz) or texts.now_untimed(event, now, tz),
    "help": lambda event, now, tz: texts.FORM_HELP,
}

_MAINLAND_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_SENTENCE_MARKS = frozenset("，。！？,!?；;：:")


class Invalid(Exception):
    """An answer a step cannot take; the message says why."""


class Unconfirmed(Invalid):
    """An answer a step takes only once the follower confirms it; the message asks them, quoting it, and
    ``stand_in`` is what a retry gets instead."""

    def __init__(self, value: str, question: str, stand_in: str) -> None:
        super().__init__(question)
        self.value, self.stand_in = value, stand_in


@dataclass
class Turn:
    """One message inside the form: what the steps need to ask, check and act."""

    session: Session
    content: Content
    event: Event
    now: datetime
    form: Form
    key: str
    # The organizers, told of each registration when ``[organizer_notices] on_registration`` is on.
    admin_openids: frozenset[str] = frozenset()
    # What a retry gets instead of a reply that shows personal fields (set by the step that shows them: the
    # summary for review, the last answers offered again, a name to confirm); stored replies hold none.
    stand_in: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return self.content.tz

    def reply(self, content: str) -> Text:
        """Answer and remember the answer for a retry of this message (the stand-in when it shows answers)."""
        stand_in = self.stand_in
        self.form.last_dedup_key, self.form.last_reply = self.key, stand_in or content
        if self.form.state is None:
            # No form open: the expiry only tells the retention job how long to keep this reply.
            self.form.expires_at = self.now + self.content.registration.form_lifetime
        return Text(content, stand_in)


def keep_as_answer(turn: Turn, answers: dict, value: str, state: str) -> str:
    """What most steps do with a parsed answer: keep it under their state. Returns nothing to add."""
    answers[state] = value
    return ""


@dataclass(frozen=True)
class Step:
    """One state of the form: the question it asks and the parser of its answer (raises Invalid)."""

    state: str
    ask: Callable[[Turn], str]
    parse: Callable[[str], str]
    # Free text: a question-looking message is a question here, not an answer.
    free_text: bool = False
    # A name that is exactly a keyword ("地点") is a question; a job title of 讲师 is an answer.
    keywords_are_questions: bool = False
    # Puts the parsed answer into the form's answers; returns a note said before the next question, or "".
    keep: Callable[[Turn, dict, str, str], str] = keep_as_answer
    # Whether the form still asks this step, given the answers so far (by default: until it is answered).
    wanted: Callable[[dict], bool] | None = None

    def is_wanted(self, answers: dict) -> bool:
        return self.wanted(answers) if self.wanted else self.state not in answers


# Letters that render as nothing (Hangul fillers, the braille blank): a name of them looks empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible_text(raw: str) -> str:
    """``raw`` NFKC-normalised (full-width letters and digits folded), without invisible characters: format
    characters (zero-width spaces and joiners, bidi overrides and isolates), controls other than
    whitespace, and blank letters; inner whitespace collapsed. A name can then neither look empty nor
    reorder what follows it in the organizers' lists and exports."""
    folded = unicodedata.normalize("NFKC", raw)
    kept = "".join(
        character for character in folded
        if character.isspace()
        or (unicodedata.category(character) not in ("Cf", "Cc") and character not in _BLANK_LETTERS)
    )
    return " ".join(kept.split())


def parse_text(label: str, limit: int) -> Callable[[str], str]:
    """A parser for a free-text field: visible characters only (``visible_text``), 1 to ``limit`` of them."""

    def parse(raw: str) -> str:
        value = visible_text(raw)
        if not value:
            raise Invalid(texts.field_empty(label))
        if len(value) > limit:
            raise Invalid(texts.field_too_long(label, limit))
        return value

    return parse


def parse_name(limit: int) -> Callable[[str], str]:
    """A parser for names: a free-text field that is also a name, not a sentence or a smiley; a lone Latin
    letter ("A") only once confirmed."""
    parse_free = parse_text(texts.FIELD_LABELS["name"], limit)

    def parse(raw: str) -> str:
        value = parse_free(raw)
        letters = [character for character in value if character.isalpha()]
        if any(character in _SENTENCE_MARKS for character in value):
            raise Invalid(texts.NAME_INVALID)
        if len(letters) == 1 and letters[0].isascii():
            raise Unconfirmed(value, texts.name_confirmation(value), texts.NAME_CONFIRM_STAND_IN)
        if len(letters) < 2:
            raise Invalid(texts.NAME_INVALID)
        return value

    return parse


def parse_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits; spaces, dashes, full-width digits and +86 are tolerated."""
    match = _MAINLAND_MOBILE.match(_PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)))
    if match is None:
        raise Invalid(texts.PHONE_INVALID)
    return match.group(1)


def parse_choice(choices: dict[str, str], reason: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        choice = choices.get(normalise(raw))
        if choice is None:
            raise Invalid(reason)
        return choice

    return parse


def _prompt(content: Content, state: str) -> str:
    return content.registration.prompts.get(state) or texts.FIELD_PROMPTS[state]


def _summary(turn: Turn) -> str:
    turn.stand_in = texts.FORM_SUMMARY_STAND_IN
    answers = turn.form.answers
    lines = texts.field_lines(answers, turn.content.registration.fields)
    if turn.event.offers_attendance_choice:
        attendance = answers[ATTENDANCE_STATE]
        waiting = attendance == "onsite" and answers.get(ONSITE_FULL)
        lines.append(("参加方式", texts.ATTENDANCE_WAITLIST_LABEL if waiting else texts.ATTENDANCE_LABELS[attendance]))
    return texts.form_summary(lines)


def _reuse_offer(turn: Turn) -> str:
    turn.stand_in = texts.REUSE_STAND_IN
    return texts.reuse_offer(texts.field_lines(turn.form.answers[REUSABLE], turn.content.registration.fields))


def _flag_shared_phone(turn: Turn, answers: dict) -> str:
    """Note (in the answers, for the organizers' notice) a phone another follower registered for the event
    with; the follower is told without learning who. Asked only when a phone is taken, not at every step."""
    shared = phone_registered_by_another(turn.session, turn.event.id, turn.form.openid, answers["phone"])
    answers[PHONE_SHARED] = shared
    return texts.PHONE_SHARED if shared else ""


def _keep_phone(turn: Turn, answers: dict, value: str, state: str) -> str:
    answers[state] = value
    return _flag_shared_phone(turn, answers)


def _keep_consent(turn: Turn, answers: dict, value: str, state: str) -> str:
    # When, stored with the registration (the value is the notice's version).
    answers[state], answers[CONSENTED_AT] = value, turn.now.isoformat()
    return ""


def _keep_reused(turn: Turn, answers: dict, value: str, state: str) -> str:
    """是: the kept fields become the answers; either way, consent to the same notice still holds."""
    kept = answers.pop(REUSABLE)
    version = turn.content.privacy.notice_version
    if kept.get(NOTICE_VERSION) == version and kept.get(CONSENT_AT):
        answers[CONSENT_STATE], answers[CONSENTED_AT] = version, kept[CONSENT_AT]
    if value != "yes":
        return ""
    answers.update((field, kept[field]) for field in turn.content.registration.fields if kept.get(field))
    return _flag_shared_phone(turn, answers) if "phone" in answers else ""


def _attendance(content: Content, onsite_full: bool) -> Step:
    if onsite_full:
        words = texts.ATTENDANCE_WORDS | texts.WAITLIST_WORDS
        return Step(ATTENDANCE_STATE, lambda turn: texts.ONSITE_FULL_PROMPT, parse_choice(words, texts.ONSITE_FULL_INVALID))
    return Step(
        ATTENDANCE_STATE,
        lambda turn: _prompt(turn.content, ATTENDANCE_STATE),
        parse_choice(texts.ATTENDANCE_WORDS, texts.ATTENDANCE_INVALID),
    )


def _parser(field: str, limit: int) -> Callable[[str], str]:
    if field == "phone":
        return parse_phone
    return parse_name(limit) if field == "name" else parse_text(texts.FIELD_LABELS[field], limit)


def _notice(turn: Turn) -> str:
    privacy = turn.content.privacy
    return texts.privacy_notice(
        privacy.notice, turn.event, turn.content.registration.fields, privacy.keep_days_after_event
    )


def form_steps(content: Content, event: Event, *, onsite_full: bool = False) -> list[Step]:
    """The form's states in order: the last answers to use again (after 取消报名), the privacy notice to agree
    to, the configured fields, how to attend (when there is a choice; first, when the seats were taken as
    the form opened), confirm. A step already answered is passed over. Nothing the follower types is kept
    before they agree."""
    config = content.registration
    reuse = Step(
        REUSE_STATE, _reuse_offer, parse_choice(texts.REUSE_WORDS, texts.REUSE_INVALID),
        keep=_keep_reused, wanted=lambda answers: REUSABLE in answers,
    )
    consent = Step(
        CONSENT_STATE,
        _notice,
        parse_choice(dict.fromkeys(texts.CONSENT_WORDS, content.privacy.notice_version), texts.CONSENT_NEEDED),
        keep=_keep_consent,
    )
    fields = [
        Step(
            field,
            lambda turn, field=field: _prompt(turn.content, field),
            _parser(field, config.max_length(field)),
            free_text=field != "phone",
            keywords_are_questions=field == "name",
            keep=_keep_phone if field == "phone" else keep_as_answer,
        )
        for field in config.fields
    ]
    steps = [reuse, consent, *fields]
    if event.offers_attendance_choice:
        attendance = _attendance(content, onsite_full)
        steps = [attendance, *steps] if onsite_full else [*steps, attendance]
    steps.append(
        Step(CONFIRM_STATE, _summary, parse_choice(dict.fromkeys(texts.CONFIRM_WORDS, "yes"), texts.NOT_UNDERSTOOD))
    )
    return steps


def next_step(steps: list[Step], answers: dict, after: Step | None = None) -> Step:
    """The first step (after ``after``) the form still asks; confirming is always asked."""
    start = steps.index(after) + 1 if after else 0
    return next(step for step in steps[start:] if step.is_wanted(answers))


def leave_form(turn: Turn, steps: list[Step]) -> Text:
    close_form(turn.form)
    return turn.reply(texts.FORM_LEFT)


def restart_form(turn: Turn, steps: list[Step]) -> Text:
    """Ask every field again; a follower who agreed to the notice is not asked to agree again (and a room
    full when the form opened still asks how to attend first)."""
    carried = {key: turn.form.answers[key] for key in (CONSENT_STATE, CONSENTED_AT, ONSITE_FULL) if key in turn.form.answers}
    first = next_step(steps, carried)
    turn.form.answers, turn.form.state = carried, first.state
    return turn.reply(f"{texts.FORM_RESTART}\n{first.ask(turn)}")


# Words that act at every step of the form, whatever the step asks.
FALLBACKS: tuple[tuple[frozenset[str], Callable[[Turn, list[Step]], Text]], ...] = (
    (texts.LEAVE_WORDS, leave_form),
    (texts.RESTART_WORDS, restart_form),
)


def close_form(form: Form) -> None:
    """End the flow without a trace of its answers. The last reply stays, for retries, and so does the
    expiry: the retention job deletes the row once it has passed."""
    form.state, form.answers, form.event_id = None, {}, None
