"""The outbox write path: campaigns and deliveries recorded in the caller's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models.deliveries import create_campaign, enqueue_message
from models.outbox import PENDING, Campaign, Delivery


def test_enqueue_message_records_one_pending_delivery_for_the_follower(sessions):
    with sessions.begin() as session:
        enqueue_message(session, openid="o-alice", text="你已从候补转为正式报名", purpose="waitlist_promotion", dedup_key="promo:1")
    with sessions() as session:
        campaign = session.scalars(select(Campaign)).one()
        delivery = session.scalars(select(Delivery)).one()
    assert (campaign.purpose, campaign.text, campaign.recipients, campaign.template_key) == (
        "waitlist_promotion",
        "你已从候补转为正式报名",
        1,
        None,
    )
    assert (delivery.campaign_id, delivery.openid, delivery.status) == (campaign.id, "o-alice", PENDING)


def test_enqueue_message_twice_with_the_same_key_records_it_once(sessions):
    for _ in range(2):
        with sessions.begin() as session:
            enqueue_message(session, openid="o-alice", text="hi", purpose="waitlist_promotion", dedup_key="promo:1")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_enqueued_message_is_lost_when_the_callers_transaction_rolls_back(sessions):
    with pytest.raises(RuntimeError), sessions.begin() as session:
        enqueue_message(session, openid="o-alice", text="hi", purpose="waitlist_promotion", dedup_key="promo:1")
        raise RuntimeError("the caller's own work failed")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_campaign_has_one_delivery_per_distinct_follower(sessions):
    with sessions.begin() as session:
        campaign = create_campaign(session, openids=["o-a", "o-b", "o-a"], text="hi", purpose="broadcast")
    with sessions() as session:
        openids = session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id)).all()
    assert sorted(openids) == ["o-a", "o-b"]
    assert campaign.recipients == 2
