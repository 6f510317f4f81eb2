"""Campaigns with sent deliveries, and SendGrid events for them through the webhook's ingestion."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from helpdesk.models import (
    CampaignStatus,
    Delivery,
    DeliveryStatus,
)
from helpdesk.models.audience import Subscriber
from helpdesk.outbound.events import ingest_events
from tests.outbound.campaign_fixtures import add_campaign

LAUNCHED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_serial = count(1)


@pytest.fixture
def make_campaign(session, make_committee, make_user):
    """``make_campaign(n, track_opens=..., sent=...)``: (campaign, deliveries, organiser).

    ``sent`` of the ``n`` deliveries were handed to the provider, the rest still wait.
    """

    def make(
        n: int = 10,
        *,
        sent: int | None = None,
        track_opens: bool = False,
        track_clicks: bool = False,
        launched: bool = True,
    ):
        i = next(_serial)
        committee = make_committee()
        campaign = add_campaign(
            session,
            committee,
            f"stats-{i}",
            name=f"Newsletter {i}",
            status=CampaignStatus.SENDING if launched else CampaignStatus.DRAFT,
            from_addr="news@conference.test",
            recipient_count=n,
            launched_at=LAUNCHED if launched else None,
            track_opens=track_opens,
            track_clicks=track_clicks,
        )
        sent = n if sent is None else sent
        deliveries = []
        for k in range(n):
            address = f"s{k}-c{i}@example.org"
            subscriber = Subscriber(address_key=address, email=address)
            session.add(subscriber)
            session.flush()
            delivery = Delivery(
                campaign_id=campaign.id,
                subscriber_id=subscriber.id,
                address_key=address,
                status=DeliveryStatus.SENT if k < sent else DeliveryStatus.PENDING,
                provider_id=f"req{i}" if k < sent else None,
                sent_at=LAUNCHED if k < sent else None,
            )
            session.add(delivery)
            deliveries.append(delivery)
        organiser = make_user(committees=[committee])
        session.commit()
        return campaign, deliveries, organiser

    return make


def event(kind: str, delivery: Delivery, at: datetime | None = None, **fields) -> dict:
    """An event as SendGrid posts it, naming the delivery in its custom_args."""
    return {
        "email": delivery.address_key,
        "timestamp": int((at or LAUNCHED + timedelta(minutes=5)).timestamp()),
        "event": kind,
        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(12)).decode(),
        "sg_message_id": f"{delivery.provider_id}.filterdrecv-1-0-to.0",
        "delivery_id": str(delivery.id),
        **fields,
    }


def ingest(session, events: list[dict]) -> None:
    ingest_events(events)
    session.commit()


def mix(deliveries: list[Delivery]) -> list[dict]:
    """Ten sent: 8 delivered, 2 bounced; 1 complaint, 1 unsubscribe; 4 readers opened 6
    times, 2 clicked 3 times."""
    d = deliveries
    events = [event("delivered", x) for x in d[:8]]
    events += [event("bounce", x, type="bounce", reason="550 5.1.1 unknown") for x in d[8:10]]
    events += [event("spamreport", d[0]), event("unsubscribe", d[1])]
    events += [event("open", x) for x in (d[0], d[0], d[0], d[1], d[2], d[3])]
    events += [event("click", x) for x in (d[0], d[0], d[2])]
    return events
