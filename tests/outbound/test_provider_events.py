"""SendGrid's signed event webhook: verified before parsing, each event once, every type applied."""

from __future__ import annotations

import base64
import json
import secrets
import time
from itertools import count

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from helpdesk.database import utcnow
from helpdesk.models import (
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    OutboundMessage,
    OutboundStatus,
    ProviderEvent,
    Suppression,
)
from helpdesk.models.audience import (
    ConsentMethod,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.outbound.autopause import campaign_stats
from tests.outbound.campaign_fixtures import add_campaign
from tests.support.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_PRIVATE_KEY,
    WEBHOOK_PUBLIC_KEY,
    sign,
)

URL = "/webhooks/sendgrid"
_serial = count(1)


@pytest.fixture
def webhook(app):
    """The app configured with the stand-in's verification key."""
    app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] = WEBHOOK_PUBLIC_KEY
    yield
    app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] = None


def _post(client, events, *, timestamp=None, key=None, body=None, headers=None):
    raw = body if body is not None else json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sent = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(raw, stamp, key or WEBHOOK_PRIVATE_KEY),
        TIMESTAMP_HEADER: stamp,
    }
    if headers is not None:
        sent = headers
    return client.post(URL, data=raw, headers=sent)


def _event(kind, *, delivery=None, outbound=None, email=None, **fields):
    payload = {
        "email": email or (delivery.address_key if delivery is not None else "someone@example.com"),
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(12)).decode(),
        "sg_message_id": "msgid.filterdrecv-1-0-to.0",
    }
    if delivery is not None:
        payload["delivery_id"] = str(delivery.id)
        if delivery.provider_id:
            payload["sg_message_id"] = f"{delivery.provider_id}.filterdrecv-1-0-to.0"
    if outbound is not None:
        payload["outbound_message_id"] = str(outbound.id)
    if kind == "bounce":
        payload.setdefault("type", "bounce")
        payload["reason"] = "550 5.1.1 no such user"
    payload.update(fields)
    return payload


@pytest.fixture
def make_campaign(session, make_committee):
    """``make_campaign(n, status=...)``: a campaign with n sent deliveries, one request id."""

    def make(n: int = 3, *, status: str = CampaignStatus.SENDING, delivery_status="sent"):
        i = next(_serial)
        campaign = add_campaign(
            session, make_committee(), f"news-{i}", status=status, recipient_count=n
        )
        provider_id = f"req{i}x{secrets.token_hex(4)}"
        deliveries = []
        for k in range(n):
            address = f"r{k}-c{i}@example.org"
            subscriber = Subscriber(address_key=address, email=address)
            session.add(subscriber)
            session.flush()
            session.add(
                Subscription(
                    list_id=campaign.list_id,
                    subscriber_id=subscriber.id,
                    consent_method=ConsentMethod.IMPORT,
                )
            )
            delivery = Delivery(
                campaign_id=campaign.id,
                subscriber_id=subscriber.id,
                address_key=address,
                status=delivery_status,
                provider_id=provider_id,
                sent_at=utcnow(),
            )
            session.add(delivery)
            deliveries.append(delivery)
        session.commit()
        return campaign, deliveries

    return make


def _count(session, model, *where):
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# -- the signature ------------------------------------------------------------------------


def test_a_signed_batch_is_accepted_and_applied(client, session, webhook, make_campaign):
    _, (d, *_) = make_campaign()
    response = _post(client, [_event("delivered", delivery=d)])
    assert response.status_code == 200, response.json
    assert response.json["new"] == 1
    session.refresh(d)
    assert d.delivered_at is not None
    assert d.event == "delivered"


def test_unsigned_tampered_wrongly_signed_and_stale_requests_are_refused(
    client, session, webhook, make_campaign
):
    _, (d, *_) = make_campaign()
    events = [_event("spamreport", delivery=d)]
    body = json.dumps(events).encode()
    stamp = str(int(time.time()))
    good = sign(body, stamp, WEBHOOK_PRIVATE_KEY)
    other_key = ec.generate_private_key(ec.SECP256R1())
    refused = [
        _post(client, events, headers={"Content-Type": "application/json"}),
        _post(
            client,
            events,
            body=body.replace(b"spamreport", b"open"),
            headers={SIGNATURE_HEADER: good, TIMESTAMP_HEADER: stamp},
        ),
        _post(client, events, key=other_key),
        _post(client, events, timestamp=int(time.time()) - 3600),
        _post(client, events, body=body, headers={SIGNATURE_HEADER: good, TIMESTAMP_HEADER: "1"}),
    ]
    for response in refused:
        assert response.status_code == 403
        assert response.json["error"] == "forbidden"
    assert _count(session, ProviderEvent) == 0
    assert _count(session, Suppression) == 0
    session.refresh(d)
    assert d.complained_at is None


def test_without_a_configured_key_every_request_is_refused(client, session, app):
    app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] = None
    response = _post(client, [_event("open")])
    assert response.status_code == 403
    assert _count(session, ProviderEvent) == 0


def test_a_signed_body_that_is_not_json_is_kept_and_answered_400(client, session, webhook):
    response = _post(client, None, body=b'[{"event": "delivered", ')
    assert response.status_code == 400
    assert response.json["error"] == "invalid"
    kept = session.scalars(sa.select(ProviderEvent)).one()
    assert kept.event == "unparsed"
    assert kept.payload["body"] == '[{"event": "delivered", '
    not_a_list = _post(client, None, body=b'{"event": "delivered"}')
    assert not_a_list.status_code == 400
    assert _count(session, ProviderEvent) == 2


# -- replays --------------------------------------------------------------------------------


def test_a_replayed_event_counts_once(client, session, webhook, make_campaign):
    campaign, (d, *_) = make_campaign()
    events = [_event("open", delivery=d), _event("click", delivery=d)]
    assert _post(client, events).json["new"] == 2
    again = _post(client, events + events)
    assert again.status_code == 200
    assert again.json["new"] == 0
    assert again.json["duplicates"] == 4
    assert _count(session, ProviderEvent) == 2
    stats = campaign_stats(campaign.id)
    assert (stats["opens"], stats["clicks"]) == (1, 1)


# -- each event type ----------------------------------------------------------------------


def test_each_event_type_updates_the_delivery(client, session, webhook, make_campaign):
    campaign, ds = make_campaign(10)
    events = [
        _event("processed", delivery=ds[0]),
        _event("delivered", delivery=ds[1]),
        _event("deferred", delivery=ds[2], response="421 try later"),
        _event("bounce", delivery=ds[3]),
        _event("bounce", delivery=ds[4], type="blocked", reason="550 5.7.1 spam"),
        _event("dropped", delivery=ds[5], reason="Invalid SMTPAPI header"),
        _event("spamreport", delivery=ds[6]),
        _event("unsubscribe", delivery=ds[7]),
        _event("group_unsubscribe", delivery=ds[8], asm_group_id=1),
        _event("open", delivery=ds[9]),
        _event("click", delivery=ds[9], url="https://conference.example/"),
    ]
    assert _post(client, events).json["new"] == 11
    for d in ds:
        session.refresh(d)
    assert [d.event for d in ds] == [
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        ds[9].event,
    ]
    assert ds[9].event in ("open", "click")
    assert ds[1].delivered_at is not None
    assert ds[3].bounced_at is not None
    assert ds[4].bounced_at is not None
    assert "no such user" in ds[3].error
    assert ds[5].status == DeliveryStatus.FAILED
    assert "Invalid SMTPAPI" in ds[5].error
    assert ds[6].complained_at is not None
    assert ds[7].unsubscribed_at is not None
    assert ds[8].unsubscribed_at is not None
    assert ds[9].opened_at is not None
    assert ds[9].clicked_at is not None
    suppressed = dict(session.execute(sa.select(Suppression.address_key, Suppression.reason)).all())
    # A hard bounce and a complaint suppress; a block (reputation) and a drop for a bad
    # header do not; SendGrid's global unsubscribe is an unsubscribe from everything.
    assert suppressed == {
        ds[3].address_key: "hard_bounce",
        ds[6].address_key: "complaint",
        ds[7].address_key: "unsubscribe_all",
    }
    statuses = dict(session.execute(sa.select(Subscriber.address_key, Subscriber.status)).all())
    assert statuses[ds[3].address_key] == SubscriberStatus.BOUNCED
    assert statuses[ds[6].address_key] == SubscriberStatus.COMPLAINED
    assert statuses[ds[7].address_key] == SubscriberStatus.UNSUBSCRIBED
    assert statuses[ds[8].address_key] == SubscriberStatus.ACTIVE
    subscriptions = dict(
        session.execute(
            sa.select(Subscription.subscriber_id, Subscription.status).where(
                Subscription.list_id == campaign.list_id
            )
        ).all()
    )
    # group_unsubscribe ends the subscription to the campaign's list only.
    assert subscriptions[ds[8].subscriber_id] == SubscriptionStatus.UNSUBSCRIBED
    assert subscriptions[ds[7].subscriber_id] == SubscriptionStatus.SUBSCRIBED
    stats = campaign_stats(campaign.id)
    assert stats["sent"] == 10
    assert (stats["delivered"], stats["bounced"], stats["complaints"]) == (1, 2, 1)
    assert (stats["unsubscribes"], stats["opens"], stats["clicks"]) == (2, 1, 1)
    assert stats["bounce_rate"] == pytest.approx(0.2)


def test_a_dropped_event_for_a_bounced_address_suppresses_it(
    client, session, webhook, make_campaign
):
    _, (d, *_) = make_campaign(1)
    _post(client, [_event("dropped", delivery=d, reason="Bounced Address")])
    assert session.scalar(sa.select(Suppression.reason)) == "hard_bounce"


def test_a_complaint_outranks_an_earlier_unsubscribe(client, session, webhook, make_campaign):
    _, (d, *_) = make_campaign(1)
    _post(client, [_event("unsubscribe", delivery=d)])
    _post(client, [_event("spamreport", delivery=d)])
    assert session.scalar(sa.select(Suppression.reason)) == "complaint"


def test_events_without_custom_args_are_matched_by_provider_id_and_address(
    client, session, webhook, make_campaign
):
    _, ds = make_campaign(3)
    event = _event("delivered", delivery=ds[1])
    del event["delivery_id"]
    _post(client, [event])
    for d in ds:
        session.refresh(d)
    assert [d.delivered_at is not None for d in ds] == [False, True, False]
    assert session.scalar(sa.select(ProviderEvent.delivery_id)) == ds[1].id


def test_an_event_naming_an_unknown_delivery_is_kept_unlinked(client, session, webhook):
    response = _post(client, [_event("bounce", delivery_id="999999", email="x@example.net")])
    assert response.status_code == 200
    kept = session.scalars(sa.select(ProviderEvent)).one()
    assert kept.delivery_id is None
    assert session.scalar(sa.select(Suppression.address_key)) == "x@example.net"


def test_entries_that_are_not_events_are_counted_and_ignored(client, session, webhook):
    response = _post(client, [{"event": "teleported"}, "text", _event("open")])
    assert response.json == {
        "received": 3,
        "new": 1,
        "duplicates": 0,
        "ignored": 2,
        "paused_campaigns": [],
    }


# -- uncertain hand-offs ---------------------------------------------------------------------


def test_an_event_resolves_an_uncertain_delivery_to_sent(client, session, webhook, make_campaign):
    campaign, ds = make_campaign(2, delivery_status="uncertain")
    assert campaign_stats(campaign.id)["uncertain"] == 2
    _post(client, [_event("processed", delivery=ds[0])])
    for d in ds:
        session.refresh(d)
    assert [d.status for d in ds] == [DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN]
    stats = campaign_stats(campaign.id)
    assert (stats["uncertain"], stats["sent"]) == (1, 1)


def test_an_event_resolves_an_uncertain_transactional_mail(client, session, webhook):
    row = OutboundMessage(
        kind="transactional",
        status=OutboundStatus.UNCERTAIN,
        message_id=f"m{next(_serial)}@helpdesk.test",
        from_addr="office@conference.test",
        to=["sam@example.net"],
        to_key="sam@example.net",
        error="timed out",
    )
    session.add(row)
    session.commit()
    _post(client, [_event("delivered", outbound=row, email="sam@example.net")])
    session.refresh(row)
    assert row.status == OutboundStatus.SENT
    assert row.provider_id == "msgid"
    assert row.error is None
    # The older custom_args name is read too.
    legacy = _event("bounce", email="sam@example.net", outbound_id=str(row.id))
    _post(client, [legacy])
    session.refresh(row)
    assert "no such user" in row.error
    assert _count(session, ProviderEvent, ProviderEvent.outbound_message_id == row.id) == 2


# -- automatic pause -------------------------------------------------------------------------


@pytest.fixture
def pause_limits(app):
    saved = {
        k: app.config[k]
        for k in (
            "HELPDESK_PAUSE_MIN_DELIVERIES",
            "HELPDESK_PAUSE_BOUNCE_RATE",
            "HELPDESK_PAUSE_COMPLAINT_RATE",
        )
    }
    app.config.update(HELPDESK_PAUSE_MIN_DELIVERIES=40)
    yield app.config
    app.config.update(saved)


def test_a_campaign_pauses_itself_when_bounces_pass_five_percent(
    client, session, webhook, make_campaign, pause_limits
):
    campaign, ds = make_campaign(40)
    # 2 of 40 is exactly 5%: not past the limit.
    first = _post(client, [_event("bounce", delivery=d) for d in ds[:2]])
    assert first.json["paused_campaigns"] == []
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.SENDING
    third = _post(client, [_event("bounce", delivery=ds[2])])
    assert third.json["paused_campaigns"] == [campaign.id]
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.PAUSED
    assert "bounces reached 7.50% of 40 sent mails" in campaign.pause_reason


def test_a_campaign_pauses_itself_when_complaints_pass_the_limit(
    client, session, webhook, make_campaign, pause_limits
):
    campaign, ds = make_campaign(40)
    _post(client, [_event("spamreport", delivery=ds[0])])
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.PAUSED
    assert "spam complaints" in campaign.pause_reason


def test_no_pause_before_the_minimum_number_sent_nor_for_a_campaign_not_sending(
    client, session, webhook, make_campaign, pause_limits
):
    small, small_ds = make_campaign(39)
    paused, paused_ds = make_campaign(40, status=CampaignStatus.PAUSED)
    _post(client, [_event("bounce", delivery=d) for d in small_ds[:20]])
    _post(client, [_event("spamreport", delivery=d) for d in paused_ds[:20]])
    session.refresh(small)
    session.refresh(paused)
    assert small.status == CampaignStatus.SENDING
    assert paused.pause_reason is None
    pause_limits["HELPDESK_PAUSE_MIN_DELIVERIES"] = 10
    pause_limits["HELPDESK_PAUSE_BOUNCE_RATE"] = 0.9
    _post(client, [_event("bounce", delivery=small_ds[30])])
    session.refresh(small)
    assert small.status == CampaignStatus.SENDING  # 21 of 39 is under 90%


# -- big batches ------------------------------------------------------------------------------


def test_a_batch_of_1200_events_is_applied_with_a_bounded_number_of_statements(
    client, session, webhook, make_campaign, app
):
    from helpdesk.extensions import db

    campaign, ds = make_campaign(400, status=CampaignStatus.DRAFT)
    events = [_event(kind, delivery=d) for d in ds for kind in ("processed", "delivered", "open")]
    statements: list[str] = []

    def count_statement(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count_statement)
    try:
        response = _post(client, events)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_statement)
    assert response.json["new"] == 1200
    assert len(statements) < 40, len(statements)
    stats = campaign_stats(campaign.id)
    assert (stats["delivered"], stats["opens"]) == (400, 400)
    assert _count(session, ProviderEvent) == 1200


def test_the_same_batch_posted_twice_at_once_counts_once(committed_app):
    import threading

    from helpdesk.extensions import db

    app = committed_app
    app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] = WEBHOOK_PUBLIC_KEY
    events = [_event("open", email=f"reader{i}@example.net") for i in range(200)]
    events += [_event("bounce", email=f"gone{i}@example.net") for i in range(50)]
    client = app.test_client()
    barrier = threading.Barrier(3)
    answers = []

    def post():
        barrier.wait()
        response = _post(client, events)
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert sum(body["new"] for _, body in answers) == 250
    with app.app_context():
        assert _count(db.session, ProviderEvent) == 250
        assert _count(db.session, Suppression) == 50
