"""What organizers do, in one place: registrations (statistics, search, check-in, audiences) and
broadcasts (scheduling, cancelling, chat drafts, outcome reports).

Followers' unanswered questions (the inbox) are answered here too. The admin API (``bot/admin``), the in-chat admin commands (``handlers/admin.py``) and the CLI all call
these functions inside their own transaction, so the three always agree. Nothing here knows about HTTP
or WeChat; errors are the exceptions below, which each caller turns into its own kind of answer.
"""

from models.organizer.broadcasts import (
    BROADCAST_GRACE,
    DRAFT_LIFETIME,
    REPORT_PURPOSE,
    AlreadyStarted,
    BroadcastStatus,
    broadcast_status,
    cancel_broadcast,
    confirm_draft,
    create_broadcast,
    list_broadcasts,
    outcome_counts,
    report_finished_broadcasts,
    save_draft,
    scheduled_broadcasts,
    start_due_broadcasts,
    start_scheduled_broadcast,
    take_draft,
)
from models.organizer.inbox import (
    AnsweredQuestion,
    QuestionGroup,
    UnknownQuestion,
    answer_group,
    answered_questions,
    open_groups,
    rule_toml,
)
from models.organizer.notices import notify_registration, queue_daily_digest
from models.organizer.registrations import (
    AUDIENCES,
    STATUSES,
    CheckIn,
    EventStats,
    NotConfirmed,
    NotFound,
    RoomFull,
    audience_openids,
    cancel_by_id,
    check_in_by_code,
    check_in_by_id,
    event_stats,
    registration_of_event,
    require_event,
    search_registrations,
    sharing_a_phone,
    undo_check_in_by_id,
    walk_in,
)
from models.organizer.reports import DeliveryReport, Missed, delivery_report

__all__ = [
    "RoomFull", "cancel_by_id", "list_broadcasts", "notify_registration", "queue_daily_digest", "undo_check_in_by_id",
    "walk_in",
    "AUDIENCES", "BROADCAST_GRACE", "DRAFT_LIFETIME", "REPORT_PURPOSE", "STATUSES", "AlreadyStarted",
    "BroadcastStatus", "CheckIn", "DeliveryReport", "Missed", "delivery_report", "EventStats", "NotConfirmed", "NotFound", "audience_openids",
    "broadcast_status", "cancel_broadcast", "check_in_by_code", "check_in_by_id", "confirm_draft",
    "create_broadcast", "event_stats", "outcome_counts", "registration_of_event", "report_finished_broadcasts", "require_event",
    "save_draft", "scheduled_broadcasts", "search_registrations", "sharing_a_phone", "start_due_broadcasts",
    "start_scheduled_broadcast", "take_draft",
    "AnsweredQuestion", "QuestionGroup", "UnknownQuestion", "answer_group", "answered_questions", "open_groups",
    "rule_toml",
]
