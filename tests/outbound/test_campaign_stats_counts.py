"""Event totals per campaign, kind and hour: kept as events arrive, each event counted once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from helpdesk.models import (
    CampaignEventCount,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    ProviderEvent,
)
from helpdesk.models.audience import Subscriber
from helpdesk.outbound import reports
from tests.outbound.campaign_fixtures import add_campaign
from tests.outbound.stats_fixtures import *  # noqa: F403 (fixtures)
from tests.outbound.stats_fixtures import LAUNCHED, event, ingest, mix


def test_timeline_draws_the_first_week_and_counts_later_events(session, make_campaign):
    campaign, deliveries, _ = make_campaign(2, track_opens=True)
    week = timedelta(hours=reports.TIMELINE_HOURS)
    ingest(
        session,
        [
            event("delivered", deliveries[0], LAUNCHED),
            event("open", deliveries[0], LAUNCHED + week - timedelta(minutes=1)),
            event("open", deliveries[0], LAUNCHED + week),
            event("open", deliveries[1], LAUNCHED + week * 3),
        ],
    )
    hours, later = reports.timeline(campaign.id)
    assert len(hours) == reports.TIMELINE_HOURS
    assert hours[-1].opens == 1
    assert later == 2


def test_event_counts_agree_with_the_events_and_a_replay_counts_once(session, make_campaign):
    campaign, deliveries, _ = make_campaign(10, track_opens=True, track_clicks=True)
    events = mix(deliveries)
    ingest(session, events)
    # SendGrid posting part of a batch again, with one event that is new
    ingest(session, [*events[:7], event("open", deliveries[5])])
    hour = 498657  # 2026-11-20 09:00 UTC, in whole hours since the epoch
    assert hour * 3600 == int(LAUNCHED.timestamp())
    counted = session.execute(
        sa.select(CampaignEventCount.event, CampaignEventCount.hour, CampaignEventCount.total)
        .where(CampaignEventCount.campaign_id == campaign.id)
        .order_by(CampaignEventCount.event)
    ).all()
    stored = session.execute(
        sa.select(ProviderEvent.event, sa.func.count())
        .join(Delivery, Delivery.id == ProviderEvent.delivery_id)
        .where(Delivery.campaign_id == campaign.id)
        .group_by(ProviderEvent.event)
        .order_by(ProviderEvent.event)
    ).all()
    assert [(kind, hour, total) for kind, total in stored] == counted
    assert counted == [
        ("bounce", hour, 2),
        ("click", hour, 3),
        ("delivered", hour, 8),
        ("open", hour, 7),
        ("spamreport", hour, 1),
        ("unsubscribe", hour, 1),
    ]


def test_a_batch_posted_three_times_at_once_counts_once(committed_app):
    import json
    import threading
    import time

    from helpdesk.extensions import db
    from tests.support.sendgrid_events import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        WEBHOOK_PRIVATE_KEY,
        WEBHOOK_PUBLIC_KEY,
        sign,
    )

    app = committed_app
    app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] = WEBHOOK_PUBLIC_KEY
    with app.app_context():
        from helpdesk.committees import add_committee

        committee = add_committee("news", "News", mail_addresses=["news@conference.test"])
        campaign = add_campaign(db.session, committee, "news", status=CampaignStatus.SENT)
        deliveries = []
        for k in range(40):
            subscriber = Subscriber(address_key=f"r{k}@example.org", email=f"r{k}@example.org")
            db.session.add(subscriber)
            db.session.flush()
            deliveries.append(
                Delivery(
                    campaign_id=campaign.id,
                    subscriber_id=subscriber.id,
                    address_key=subscriber.address_key,
                    status=DeliveryStatus.SENT,
                    provider_id="req",
                )
            )
        db.session.add_all(deliveries)
        db.session.commit()
        campaign_id = campaign.id
        events = [event(kind, d) for d in deliveries for kind in ("delivered", "open", "open")]
        own_events = [event("click", d) for d in deliveries[:3]]
    client = app.test_client()
    barrier = threading.Barrier(3)
    answers = []

    def post(own_event: dict):
        # The same batch, each time with one event of its own.
        body = json.dumps([*events, own_event]).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, stamp, WEBHOOK_PRIVATE_KEY),
            TIMESTAMP_HEADER: stamp,
        }
        barrier.wait()
        answers.append(client.post("/webhooks/sendgrid", data=body, headers=headers).status_code)

    threads = [threading.Thread(target=post, args=(own,)) for own in own_events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [200, 200, 200]
    with app.app_context():
        assert reports.event_totals(campaign_id) == {"open": 80, "click": 3}
        hours, _ = reports.timeline(campaign_id)
        assert [(h.delivered, h.opens) for h in hours] == [(40, 80)]
