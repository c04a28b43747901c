"""The schema of ``config.toml``: what the bot says (events, talks, keywords, rules, menu, reminders).

``load_content`` reads and validates the file once, so a bad config stops start-up with a message that
names the field. Secrets and wiring come from the environment (``bot.settings``), never from here.
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from models.text import normalise

DEFAULT_CONFIG_PATH = Path("config.toml")
_OFFSET_PATTERN = re.compile(r"^(\d+)([dhms])$")
_OFFSET_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending field."""


def parse_offset(text: str) -> timedelta:
    """Turn a reminder offset such as ``"1d"`` or ``"2h"`` into a timedelta."""
    match = _OFFSET_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"unknown offset {text!r}: use a whole number and a unit d, h, m or s (e.g. '1d', '2h')")
    amount, unit = match.groups()
    return timedelta(**{_OFFSET_UNITS[unit]: int(amount)})


def _check_offset(text: str) -> str:
    parse_offset(text)
    return text


ReminderOffset = Annotated[str, AfterValidator(_check_offset)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotConfig(_Strict):
    account_name: str
    timezone: str = "Asia/Shanghai"
    public_base_url: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Talk(_Strict):
    title: str = Field(min_length=1)
    speaker: str = Field(min_length=1)
    speaker_title: str = ""
    abstract: str = ""
    outline: list[str] = []
    # Words that find this talk by its content (Kubernetes, 大模型): routing only, never shown.
    tags: list[str] = []
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    slides_url: str = ""
    replay_url: str = ""


class Event(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    series: str = ""
    title: str = Field(min_length=1)
    summary: str = ""
    starts_at: datetime
    ends_at: datetime
    venue: str = Field(min_length=1)
    city: str = ""
    format: str = ""
    capacity: int = Field(ge=0)
    reminders: list[ReminderOffset] = []
    map_url: str = ""
    stream_url: str = ""
    slides_url: str = ""
    replay_url: str = ""
    talks: list[Talk] = []
    # Registration closes at this moment; unset means when the event starts.
    registration_closes_at: datetime | None = None
    # A follower who scans the check-in code unregistered is registered on the spot while seats remain.
    walk_in: bool = False
    # Scanning the check-in code works from this long before the start until the end.
    checkin_opens_before: ReminderOffset = "2h"

    @model_validator(mode="after")
    def _ends_after_start(self) -> Event:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.registration_closes_at is not None and self.registration_closes_at > self.ends_at:
            raise ValueError("registration_closes_at must not be after ends_at")
        return self

    @property
    def registration_deadline(self) -> datetime:
        """When registration closes: ``registration_closes_at``, else the start of the event."""
        return self.registration_closes_at or self.starts_at

    @property
    def checkin_opens_at(self) -> datetime:
        return self.starts_at - parse_offset(self.checkin_opens_before)

    def checkin_open(self, now: datetime) -> bool:
        """Whether a follower's scan of the check-in code counts now: from ``checkin_opens_at`` to the end."""
        return self.checkin_opens_at <= now < self.ends_at

    def takes_place_on(self, day: date, tz: tzinfo) -> bool:
        """Whether the event runs on ``day`` in ``tz``: the desk at the door lists the day's event."""
        return self.starts_at.astimezone(tz).date() <= day <= self.ends_at.astimezone(tz).date()

    def state(self, now: datetime) -> Literal["upcoming", "running", "ended"]:
        if now < self.starts_at:
            return "upcoming"
        return "running" if now < self.ends_at else "ended"

    @property
    def offers_attendance_choice(self) -> bool:
        """Followers choose between a seat on site and the livestream."""
        return self.has_livestream and self.has_venue_seats

    @property
    def name(self) -> str:
        """How the bot names the event in a sentence: the series, else the title."""
        return self.series or self.title

    @property
    def has_livestream(self) -> bool:
        return "直播" in self.format or "线上" in self.format

    @property
    def has_venue_seats(self) -> bool:
        return "线下" in self.format or not self.has_livestream

    def reminder_offsets(self) -> list[timedelta]:
        return [parse_offset(offset) for offset in self.reminders]


TOPICS = ("agenda", "time", "venue", "livestream", "materials", "now_next", "help")


class HelpConfig(_Strict):
    topics: list[str] = ["agenda", "time", "venue", "livestream", "materials"]


REGISTRATION_FIELDS = ("name", "phone", "company", "title")
RegistrationField = Literal["name", "phone", "company", "title"]


class RegistrationConfig(_Strict):
    """The registration form: which fields, in which order, how they are asked and how long they may be.

    Prompts left out here use the default wording in ``handlers/texts.py``.
    """

    fields: list[RegistrationField] = Field(list(REGISTRATION_FIELDS), min_length=1)
    prompts: dict[RegistrationField | Literal["attendance"], str] = {}
    max_lengths: dict[RegistrationField, Annotated[int, Field(ge=1, le=128)]] = {
        "name": 32,
        "company": 64,
        "title": 64,
    }
    form_expires_after: ReminderOffset = "30m"

    @field_validator("fields")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each field may appear once")
        return value

    def max_length(self, field: str) -> int:
        return self.max_lengths.get(field, 64)

    @property
    def form_lifetime(self) -> timedelta:
        return parse_offset(self.form_expires_after)


MatchMode = Literal["exact", "contains", "regex"]


def compile_rule_regex(pattern: str) -> re.Pattern[str]:
    """A rule's regular expression as the bot uses it: searched anywhere in the message, ignoring case."""
    return re.compile(pattern, re.IGNORECASE)


class Keyword(_Strict):
    """One keyword of a rule and how a message must contain it."""

    word: str = Field(min_length=1)
    mode: MatchMode = "contains"

    @model_validator(mode="after")
    def _matchable(self) -> Keyword:
        if self.mode == "regex":
            try:
                compile_rule_regex(self.word)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.word!r}: {exc}") from exc
        elif not normalise(self.word):
            raise ValueError(
                f"{self.word!r} is only spaces and punctuation, which matching ignores:"
                " use regex mode to match punctuation"
            )
        return self


class NewsArticle(_Strict):
    title: str = Field(min_length=1)
    description: str = ""
    picture_url: str = ""
    url: str = ""


class ImageReference(_Strict):
    # Empty until the image is uploaded (素材管理): the reply's text is sent meanwhile.
    media_id: str = ""


class ConfiguredReply(_Strict):
    """A reply written in config.toml: ``text``, one ``news`` article, or an ``image`` by media_id.

    ``text`` may accompany ``image``: it is sent while the image's media_id is left empty.
    """

    text: str = ""
    news: NewsArticle | None = None
    image: ImageReference | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ConfiguredReply:
        if self.news is not None and (self.text.strip() or self.image is not None):
            raise ValueError("give news on its own, without text or image")
        return self

    @property
    def is_empty(self) -> bool:
        return not (self.text.strip() or self.news is not None or (self.image is not None and self.image.media_id))


class DefaultReplyConfig(ConfiguredReply):
    """What text that nothing answers gets; empty means the help menu."""

    # Like the MP console: at most once per follower in this time; in between, a pointer to 帮助.
    every: ReminderOffset = "1h"

    @property
    def interval(self) -> timedelta:
        return parse_offset(self.every)


class Rule(_Strict):
    """An organiser's keyword rule: when a message matches a keyword, send the reply (first rule wins)."""

    name: str = ""
    mode: MatchMode = "contains"
    keywords: list[Keyword] = Field(min_length=1)
    reply: ConfiguredReply
    event: str = ""
    active_from: datetime | None = Field(None, alias="from")
    active_until: datetime | None = Field(None, alias="until")
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _plain_keywords(cls, data):
        # A keyword written as a plain string takes the rule's ``mode``; a table sets its own.
        if isinstance(data, dict) and isinstance(data.get("keywords"), list):
            mode = data.get("mode", "contains")
            keywords = [{"word": word, "mode": mode} if isinstance(word, str) else word for word in data["keywords"]]
            data = {**data, "keywords": keywords}
        return data

    @field_validator("reply")
    @classmethod
    def _not_empty(cls, value: ConfiguredReply) -> ConfiguredReply:
        if value.is_empty:
            raise ValueError("empty reply: give text, news (title, url …) or image (media_id)")
        return value

    def active(self, now: datetime, event_id: str) -> bool:
        """Whether the rule applies now, to the event the bot is talking about."""
        if not self.enabled or (self.event and self.event != event_id):
            return False
        if self.active_from is not None and now < self.active_from:
            return False
        return self.active_until is None or now < self.active_until


# WeChat's custom-menu limits (自定义菜单创建接口), checked before any API call.
MENU_TOP_BUTTONS = 3
MENU_SUB_BUTTONS = 5
MENU_TOP_NAME_BYTES = 16
MENU_SUB_NAME_BYTES = 60
MENU_KEY_BYTES = 128
MENU_URL_BYTES = 1024
ButtonType = Literal["click", "view", "scancode_waitmsg"]


def _check_name_bytes(name: str, limit: int) -> str:
    if not name.strip():
        raise ValueError("a button needs a name")
    size = len(name.encode("utf-8"))
    if size > limit:
        raise ValueError(f"{name!r} is {size} bytes; WeChat allows {limit} (a Chinese character takes 3)")
    return name


def _check_count(buttons: list, limit: int, what: str) -> list:
    if len(buttons) > limit:
        raise ValueError(f"WeChat allows at most {limit} {what}, got {len(buttons)}")
    return buttons


def _check_action(button: _ButtonAction) -> None:
    if button.type is None:
        raise ValueError("a button needs a type: click, view or scancode_waitmsg (a top-level one may open sub_buttons instead)")
    if button.type == "view":
        if not button.url.startswith(("https://", "http://")):
            raise ValueError("a view button needs url = \"https://…\"")
        if len(button.url.encode("utf-8")) > MENU_URL_BYTES:
            raise ValueError(f"url is longer than WeChat's {MENU_URL_BYTES} bytes")
        if button.key:
            raise ValueError("a view button opens its url and takes no key")
        return
    if not button.key:
        raise ValueError(f"a {button.type} button needs a key")
    if len(button.key.encode("utf-8")) > MENU_KEY_BYTES:
        raise ValueError(f"key {button.key!r} is longer than WeChat's {MENU_KEY_BYTES} bytes")
    if button.url:
        raise ValueError(f"a {button.type} button takes a key, not a url")


class _ButtonAction(_Strict):
    type: ButtonType | None = None
    key: str = ""
    url: str = ""


class MenuButton(_ButtonAction):
    """A sub-button: ``click`` (sends ``key``), ``view`` (opens ``url``) or ``scancode_waitmsg`` (staff scanning)."""

    name: Annotated[str, AfterValidator(partial(_check_name_bytes, limit=MENU_SUB_NAME_BYTES))]

    @model_validator(mode="after")
    def _action(self) -> MenuButton:
        _check_action(self)
        return self


class TopMenuButton(_ButtonAction):
    """A top-level button: opens ``sub_buttons``, or acts itself like a sub-button."""

    name: Annotated[str, AfterValidator(partial(_check_name_bytes, limit=MENU_TOP_NAME_BYTES))]
    sub_buttons: Annotated[
        list[MenuButton], AfterValidator(partial(_check_count, limit=MENU_SUB_BUTTONS, what="sub-buttons under a button"))
    ] = []

    @model_validator(mode="after")
    def _opens_or_acts(self) -> TopMenuButton:
        if not self.sub_buttons:
            _check_action(self)
        elif self.type or self.key or self.url:
            raise ValueError("a button with sub_buttons only opens them: remove its type, key and url")
        return self


class MenuConfig(_Strict):
    """The custom menu (``buttons``) and what its click keys answer: a topic, or a rule by name."""

    buttons: Annotated[
        list[TopMenuButton], AfterValidator(partial(_check_count, limit=MENU_TOP_BUTTONS, what="top-level buttons"))
    ] = []
    click_topics: dict[str, str] = {}
    click_rules: dict[str, str] = {}

    @model_validator(mode="after")
    def _clicks_answered(self) -> MenuConfig:
        for position, button in self.positioned_buttons():
            if button.type == "click" and button.key not in self.click_topics and button.key not in self.click_rules:
                raise ValueError(
                    f"{position}.key: {button.key!r} answers nothing: map it in [menu.click_topics] or [menu.click_rules]"
                )
        return self

    def positioned_buttons(self) -> list[tuple[str, TopMenuButton | MenuButton]]:
        """Every button with its position in the file (``buttons[0].sub_buttons[2]``)."""
        found: list[tuple[str, TopMenuButton | MenuButton]] = []
        for index, button in enumerate(self.buttons):
            found.append((f"buttons[{index}]", button))
            found += [
                (f"buttons[{index}].sub_buttons[{sub_index}]", sub)
                for sub_index, sub in enumerate(button.sub_buttons)
            ]
        return found


REMINDER_PLACEHOLDERS = frozenset({"event", "title", "when", "starts_in", "venue", "checkin_code", "stream_link"})


def _unknown_placeholder(template: str, allowed: frozenset[str]) -> str | None:
    """Why ``template`` cannot be filled with ``allowed``'s placeholders, or None when it can."""
    used = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    unknown = used - allowed
    if not unknown:
        return None
    choices = ", ".join(f"{{{name}}}" for name in sorted(allowed))
    return f"unknown placeholder {{{sorted(unknown)[0]}}}: use {choices}"


def _check_reminder_template(template: str) -> str:
    if problem := _unknown_placeholder(template, REMINDER_PLACEHOLDERS):
        raise ValueError(problem)
    return template


ReminderTemplate = Annotated[str, AfterValidator(_check_reminder_template)]


class RemindersConfig(_Strict):
    """How reminders behave: the late-send window after downtime, who gets one, and their wording.

    Templates left empty use the default wording in ``models/texts.py``.
    """

    grace: ReminderOffset = "30m"
    remind_waitlisted: bool = False
    onsite: ReminderTemplate = ""
    online: ReminderTemplate = ""
    waitlisted: ReminderTemplate = ""
    # At the start time, online registrants get `online_start` with the stream link (once the event has one).
    online_at_start: bool = True
    online_start: ReminderTemplate = ""

    @property
    def grace_period(self) -> timedelta:
        return parse_offset(self.grace)


class RateLimitConfig(_Strict):
    """How many messages one follower may send: a token bucket of ``burst`` messages, refilled at
    ``per_minute``. Over it, one short notice, then silence until the bucket refills. Admins are exempt."""

    burst: int = Field(20, ge=1)
    per_minute: int = Field(30, ge=1)


DELIVERY_CHANNELS = ("template", "subscribe", "customer_service")
TEMPLATE_PLACEHOLDERS = frozenset({"text", "event", "title", "when", "venue"})


def _check_template_fields(fields: dict[str, str]) -> dict[str, str]:
    for name, template in fields.items():
        if problem := _unknown_placeholder(template, TEMPLATE_PLACEHOLDERS):
            raise ValueError(f"{name}: {problem}")
    return fields


TemplateFields = Annotated[dict[str, str], AfterValidator(_check_template_fields)]


class DeliveryConfig(_Strict):
    """How outbound messages reach followers: the channels tried in order, and their templates.

    A template id left empty makes that channel unavailable for messages of that kind.
    """

    channels: list[str] = ["template", "customer_service"]
    concurrency: int = Field(32, ge=1, le=64)
    # WeChat allows a few customer-service messages per follower per 48-hour window.
    customer_service_per_window: int = Field(5, ge=1)
    # Template ids by message kind ("reminder", "broadcast") for 模板消息 and for 订阅通知 (bizsend).
    templates: dict[str, str] = {}
    subscribe_templates: dict[str, str] = {}
    # Template data fields: field name -> text with {text} {event} {title} {when} {venue}.
    template_fields: TemplateFields = {
        "first": "{text}",
        "keyword1": "{title}",
        "keyword2": "{when}",
        "keyword3": "{venue}",
    }
    subscribe_fields: TemplateFields = {"thing1": "{title}", "time2": "{when}", "thing3": "{venue}"}

    def reaches_beyond_window(self, kind: str) -> bool:
        """Whether a template or 订阅通知 id lets messages of ``kind`` reach followers silent for 48 hours."""
        return any(channel != "customer_service" for channel in self.channels_for(kind))

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        for channel in channels:
            if channel not in DELIVERY_CHANNELS:
                raise ValueError(f"unknown channel {channel!r}: use {', '.join(DELIVERY_CHANNELS)}")
        return channels

    def template_id(self, channel: str, kind: str) -> str:
        """The template id that channel ``template`` or ``subscribe`` uses for messages of ``kind`` ("" = none)."""
        return (self.templates if channel == "template" else self.subscribe_templates).get(kind, "")

    def channels_for(self, kind: str) -> list[str]:
        """The configured channels that can carry messages of ``kind``, in order: a template channel needs
        a template id for it; customer service needs none (but reaches only within 48 hours)."""
        return [channel for channel in self.channels if channel == "customer_service" or self.template_id(channel, kind)]


PRIVACY_NOTICE_PLACEHOLDERS = frozenset({"event", "fields", "keep_days"})


def _check_privacy_notice(template: str) -> str:
    if problem := _unknown_placeholder(template, PRIVACY_NOTICE_PLACEHOLDERS):
        raise ValueError(problem)
    return template


class PrivacyConfig(_Strict):
    """The notice a follower agrees to before the form's first field, and how long personal fields are kept.

    ``notice`` left empty uses the default wording in ``models/texts.py``; change ``notice_version`` with
    the wording, since each registration records the version its follower agreed to.
    """

    notice: Annotated[str, AfterValidator(_check_privacy_notice)] = ""
    notice_version: str = Field("1", min_length=1, max_length=32)
    keep_days_after_event: int = Field(30, ge=0)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.keep_days_after_event)


def _in_zone(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


# WeChat's limit for a permanent code's scene string.
SCENE_MAX_LENGTH = 64


def _check_channel_names(names: list[str]) -> list[str]:
    for name in names:
        if not name or len(name) > SCENE_MAX_LENGTH or name.startswith("checkin:"):
            raise ValueError(f"channel {name!r}: 1 to {SCENE_MAX_LENGTH} characters, not starting with 'checkin:'")
    if len(set(names)) != len(names):
        raise ValueError("each channel may appear once")
    return names


class QrConfig(_Strict):
    """The channels followers come from: each gets a permanent QR code (``eventbot qr channel NAME``, the
    dashboard), and a follow through it is counted as that channel."""

    channels: Annotated[list[str], AfterValidator(_check_channel_names)] = []


class OrganizerNoticesConfig(_Strict):
    """What the organizers (EVENTBOT_ADMIN_OPENIDS) are told in the chat, through the outbox."""

    # A message to each organizer on every registration (or place on the waitlist).
    on_registration: bool = False
    # "21:00": a daily digest at this local time (counts, the day's new registrations); "" for none.
    digest_at: str = ""

    @field_validator("digest_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if value:
            time.fromisoformat(value)
        return value

    @property
    def digest_time(self) -> time | None:
        return time.fromisoformat(self.digest_at) if self.digest_at else None


class Content(BaseSettings):
    """What ``config.toml`` holds: the events and how followers' words map to topics."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    bot: BotConfig
    events: list[Event] = Field(min_length=1)
    keywords: dict[str, list[str]] = {}
    help: HelpConfig = HelpConfig()
    menu: MenuConfig = MenuConfig()
    rules: list[Rule] = []
    welcome: ConfiguredReply = ConfiguredReply()
    default_reply: DefaultReplyConfig = DefaultReplyConfig()
    registration: RegistrationConfig = RegistrationConfig()
    reminders: RemindersConfig = RemindersConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    qr: QrConfig = QrConfig()
    organizer_notices: OrganizerNoticesConfig = OrganizerNoticesConfig()
    privacy: PrivacyConfig = PrivacyConfig()

    @property
    def tz(self) -> ZoneInfo:
        return self.bot.tz

    @model_validator(mode="after")
    def _consistent(self) -> Content:
        seen: set[str] = set()
        for index, event in enumerate(self.events):
            if event.id in seen:
                raise ValueError(f"events[{index}].id: duplicate event id {event.id!r}")
            seen.add(event.id)
        self._check_rules(seen)
        return self

    def _check_rules(self, event_ids: set[str]) -> None:
        names: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.event and rule.event not in event_ids:
                raise ValueError(f"rules[{index}].event: no event has id {rule.event!r}")
            if rule.active_from and rule.active_until:
                # One end may be written with an offset and the other without: compare both in the bot's zone.
                start, until = (_in_zone(moment, self.bot.tz) for moment in (rule.active_from, rule.active_until))
                if until <= start:
                    raise ValueError(f"rules[{index}].until: must be after from")
            if rule.name in names:
                raise ValueError(f"rules[{index}].name: duplicate rule name {rule.name!r}")
            if rule.name:
                names.add(rule.name)
        for key, name in self.menu.click_rules.items():
            if name not in names:
                raise ValueError(f"menu.click_rules.{key}: no rule is named {name!r}")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):
        # Content comes only from the TOML file passed in by ``load_content``, never from the environment.
        return (init_settings,)

    def localise(self) -> Content:
        """Give every naive datetime the bot's timezone, so nothing downstream sees a naive time."""
        tz = self.bot.tz

        def aware(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is not None:
                return value
            return value.replace(tzinfo=tz)

        events = [
            event.model_copy(
                update={
                    "starts_at": aware(event.starts_at),
                    "ends_at": aware(event.ends_at),
                    "registration_closes_at": aware(event.registration_closes_at),
                    "talks": [
                        talk.model_copy(update={"starts_at": aware(talk.starts_at), "ends_at": aware(talk.ends_at)})
                        for talk in event.talks
                    ],
                }
            )
            for event in self.events
        ]
        ends = {event.id: event.ends_at for event in events}
        # A rule about one event says nothing once that event is over ("还有机会领取精美礼品"), unless told.
        rules = [
            rule.model_copy(
                update={
                    "active_from": aware(rule.active_from),
                    "active_until": aware(rule.active_until) or (ends[rule.event] if rule.event else None),
                }
            )
            for rule in self.rules
        ]
        return self.model_copy(update={"events": events, "rules": rules})

    def event_by_id(self, event_id: str) -> Event | None:
        return next((event for event in self.events if event.id == event_id), None)

    def current_event(self, now: datetime) -> Event:
        """The event the bot talks about: the next one not yet ended, else the most recent one."""
        upcoming = [event for event in self.events if event.ends_at > now]
        if upcoming:
            return min(upcoming, key=lambda event: event.starts_at)
        return max(self.events, key=lambda event: event.ends_at)

    def latest_ended_event(self, now: datetime) -> Event | None:
        """The event that ended most recently, if any: what slides and replay questions are about."""
        ended = [event for event in self.events if event.ends_at <= now]
        return max(ended, key=lambda event: event.ends_at) if ended else None


def describe_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {location or '(top level)'}: {message}")
    return "\n".join(lines)


def load_content(path: Path) -> Content:
    """Read and validate a config file; raise ConfigError naming the field on any problem."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (set EVENTBOT_CONFIG to its path)")
    try:
        data = TomlConfigSettingsSource(Content, toml_file=path)()
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Content(**data).localise()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path))) from exc
