"""Check-in in the chat: a follower scans the event's check-in QR code (scene ``checkin:<event>``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.dispatch import Router
from handlers.matching import (
    checkin_scene,
)
from handlers.registration import registration_open
from handlers.replies import Text
from models import Follower, texts
from models.content import Content
from models.registration import (
    WAITLISTED,
    AlreadyRegistered,
    active_registration,
    check_in,
    register_walk_in,
)

checkin_router = Router("checkin")


@checkin_router.handler(checkin_scene)
def handle_checkin_scan(
    checkin_event_id: str, message, openid: str, session: Session, content: Content, now: datetime,
    follower: Follower,
) -> Text:
    if message.event != "scan":
        follower.subscribed = True
    event = content.event_by_id(checkin_event_id)
    if event is None:
        return Text(texts.CHECKIN_UNKNOWN)
    if not event.checkin_open(now):
        return Text(texts.checkin_closed(event, now, content.tz))
    registration = active_registration(session, event.id, openid)
    if registration is None and event.walk_in:
        try:
            registration = register_walk_in(
                session, event_id=event.id, openid=openid, capacity=event.capacity, now=now
            )
        except AlreadyRegistered as already:  # a second scan of the same follower won the race
            registration = already.registration
    if registration is None:
        return Text(texts.checkin_not_registered(event, registration_open(event, now)))
    if registration.status == WAITLISTED:
        return Text(texts.checkin_waitlisted(registration.position))
    check_in(session, registration, now)
    return Text(texts.checked_in(event, registration), texts.checked_in(event, registration, named=False))
