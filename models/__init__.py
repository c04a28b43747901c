"""Persistent state: SQLAlchemy 2.0 models, the session factory and the data access they need."""

from models.audit import AuditEntry
from models.base import Base
from models.broadcast import BroadcastDraft, BroadcastPlan
from models.follower import Follower
from models.inbound import InboundMessage, SignedPush
from models.inbox import InboxQuestion
from models.kept_answers import KeptAnswers
from models.outbox import (
    AccessToken,
    Campaign,
    Delivery,
    SenderState,
    SubscribeAcceptance,
)
from models.qr_tickets import QrTicket
from models.registration import FormState, Registration
from models.reminder import ReminderRun, SchedulerLease

__all__ = [
    "AccessToken",
    "AuditEntry",
    "Base",
    "BroadcastDraft",
    "BroadcastPlan",
    "Campaign",
    "Delivery",
    "Follower",
    "FormState",
    "InboundMessage",
    "InboxQuestion",
    "KeptAnswers",
    "QrTicket",
    "Registration",
    "ReminderRun",
    "SchedulerLease",
    "SenderState",
    "SignedPush",
    "SubscribeAcceptance",
]
