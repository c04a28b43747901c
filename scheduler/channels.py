"""Which WeChat channel can carry a message to a follower, and what exactly to send on it.

WeChat offers three ways to write first, each with its own rule: a template message (模板消息, needs a
template id), a subscribe message (订阅通知, needs the follower's acceptance of that template, one send
per acceptance) and a customer-service text (客服消息, only within 48 hours of the follower's last
message and a few per window). The channels are tried in the order of ``[delivery] channels``; a
follower none of them can reach is reported with the reasons about them (in Chinese, for organizers:
``models.texts``), or, when every reason is the configuration's, with those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import texts
from models.content import DeliveryConfig
from models.follower import Follower
from models.outbox import (
    CLAIMED,
    SENDING,
    SENT,
    UNKNOWN,
    Campaign,
    Delivery,
    SubscribeAcceptance,
)
from scheduler.settings import SchedulerSettings

TEMPLATE = "template"
SUBSCRIBE = "subscribe"
CUSTOMER_SERVICE = "customer_service"
CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)
# The key ``reachable_now`` counts followers under when no channel can reach them.
UNREACHABLE_CHANNEL = "unreachable"
# Customer-service sends that count against the window's quota: sent, about to go, or possibly sent.
_COUNTED_STATES = (CLAIMED, SENDING, SENT, UNKNOWN)


@dataclass(frozen=True)
class Route:
    """How one message goes to one follower: ``channel`` None means unreachable, ``reason`` says why."""

    channel: str | None
    template_id: str = ""
    text: str = ""
    data: dict = field(default_factory=dict)
    reason: str = ""


def template_values(settings: SchedulerSettings, campaign: Campaign, text: str, now: datetime) -> dict[str, str]:
    """What the template placeholders stand for: the message and its event's facts from config."""
    content = settings.content
    event = (campaign.event_id and content.event_by_id(campaign.event_id)) or content.current_event(now)
    return {
        "text": text,
        "event": event.name,
        "title": event.title,
        "when": f"{event.starts_at.astimezone(settings.tz):%Y-%m-%d %H:%M}",
        "venue": event.venue,
    }


def _fill(fields: dict[str, str], values: dict[str, str]) -> dict:
    return {name: {"value": template.format(**values)} for name, template in fields.items()}


class BatchRouter:
    """Chooses the route of every delivery in one claimed batch.

    The batch's followers and their customer-service sends in the current window are read with one query
    each; a route chosen here counts against the quota of the next delivery to the same follower. Without
    ``spend`` (a preview: who could be reached now) no subscribe acceptance is locked or used up.
    """

    def __init__(
        self, session: Session, settings: SchedulerSettings, now: datetime, openids: Iterable[str], *, spend: bool = True
    ) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.spend = spend
        wanted = set(openids)
        self.followers = {
            follower.openid: follower for follower in session.scalars(select(Follower).where(Follower.openid.in_(wanted)))
        }
        self.customer_service_used: Counter[str] = Counter(
            dict(
                session.execute(
                    select(Delivery.openid, func.count())
                    .join(Follower, Follower.openid == Delivery.openid)
                    .where(
                        Delivery.openid.in_(wanted),
                        Delivery.channel == CUSTOMER_SERVICE,
                        Delivery.status.in_(_COUNTED_STATES),
                        Delivery.claimed_at >= Follower.last_interaction_at,
                    )
                    .group_by(Delivery.openid)
                ).all()
            )
        )

    def route(self, campaign: Campaign, delivery: Delivery) -> Route:
        """The first configured channel that can reach ``delivery.openid``; a subscribe acceptance is used up."""
        config = self.settings.content.delivery
        follower = self.followers.get(delivery.openid)
        if follower is not None and not follower.subscribed:
            return Route(None, reason=texts.REACH_UNFOLLOWED)
        text = delivery.text or campaign.text
        values = template_values(self.settings, campaign, text, self.now)
        reasons, unconfigured = [], []
        for channel in config.channels:
            if channel == CUSTOMER_SERVICE:
                blocked = self._customer_service_block(config, follower)
                if not blocked:
                    self.customer_service_used[delivery.openid] += 1
                    return Route(CUSTOMER_SERVICE, text=text)
                reasons.append(blocked)
                continue
            template_id = config.template_id(channel, campaign.template_key or "")
            if not template_id:
                unconfigured.append(texts.REACH_NO_TEMPLATE if channel == TEMPLATE else texts.REACH_NO_SUBSCRIBE_TEMPLATE)
                continue
            if channel == TEMPLATE:
                return Route(TEMPLATE, template_id=template_id, data=_fill(config.template_fields, values))
            # Locked: two senders must not both spend the same acceptance.
            acceptance = self.session.get(SubscribeAcceptance, (delivery.openid, template_id), with_for_update=self.spend)
            if acceptance is None or acceptance.remaining <= 0:
                reasons.append(texts.REACH_NOT_SUBSCRIBED)
                continue
            if self.spend:
                acceptance.remaining -= 1
            return Route(SUBSCRIBE, template_id=template_id, data=_fill(config.subscribe_fields, values))
        return Route(None, reason="；".join(reasons or unconfigured) or texts.REACH_NO_CHANNEL)

    def _customer_service_block(self, config: DeliveryConfig, follower: Follower | None) -> str:
        """Why a customer-service text cannot go to ``follower`` now ("" if it can)."""
        if follower is None:
            return texts.REACH_NEVER_WROTE
        if self.now - follower.last_interaction_at > CUSTOMER_SERVICE_WINDOW:
            return texts.REACH_WINDOW_CLOSED
        used = self.customer_service_used[follower.openid]
        if used >= config.customer_service_per_window:
            return texts.reach_quota_used(used)
        return ""


def reachable_now(
    session: Session, settings: SchedulerSettings, openids: Iterable[str], campaign: Campaign, now: datetime
) -> dict[str, int]:
    """How many of ``openids`` each channel would carry ``campaign`` to if it were sent at ``now``
    (``unreachable``: none); a preview that changes nothing."""
    wanted = list(dict.fromkeys(openids))
    router = BatchRouter(session, settings, now, wanted, spend=False)
    routes = (router.route(campaign, Delivery(openid=openid)) for openid in wanted)
    return dict(Counter(route.channel or UNREACHABLE_CHANNEL for route in routes))
