"""A mail to the mailto: unsubscribe address (List-Unsubscribe) unsubscribes, opens no ticket."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.inbound.ingest import Source, ingest
from helpdesk.models import SubscriptionStatus, Ticket
from helpdesk.outbound import audience
from helpdesk.outbound.tokens import unsubscribe_token
from tests.support.mails import make_mail

SOURCE = Source("test")


@pytest.fixture
def subscribed(app, session, make_committee):
    make_committee("info", triage=True, mail_addresses=["info@conference.test"])
    news = audience.add_list("news", committee="info", name="News")
    subscriber = audience.upsert_subscriber("sam@example.net", name="Sam")
    audience.subscribe(news.id, subscriber.id, method="admin", source="test")
    session.flush()
    app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = "unsubscribe@conference.test"
    yield news, subscriber
    app.config["HELPDESK_UNSUBSCRIBE_ADDRESS"] = None


def _status(news, subscriber) -> SubscriptionStatus:
    subscription = audience.get_subscription(news.id, subscriber.id)
    db.session.refresh(subscription)
    return subscription.status


def _tickets() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Ticket))


@pytest.mark.parametrize("where", ["subject", "address"])
def test_a_mailto_unsubscribe_with_its_token_unsubscribes_and_opens_no_ticket(subscribed, where):
    news, subscriber = subscribed
    token = unsubscribe_token(subscriber.id, news.id, 3, None)
    if where == "subject":
        raw = make_mail(to="unsubscribe@conference.test", subject=f"unsubscribe {token}")
    else:
        raw = make_mail(to=f"unsubscribe+{token}@conference.test", subject="unsubscribe")
    result = ingest(raw, SOURCE)
    assert result.outcome == "unsubscribe"
    assert _status(news, subscriber) == SubscriptionStatus.UNSUBSCRIBED
    subscription = audience.get_subscription(news.id, subscriber.id)
    assert subscription.unsubscribe_source == "mailto campaign:3"
    assert _tickets() == 0


def test_a_mail_to_the_unsubscribe_address_without_a_valid_token_reaches_a_person(subscribed):
    news, subscriber = subscribed
    token = unsubscribe_token(subscriber.id, news.id)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    raw = make_mail(to="unsubscribe@conference.test", subject=f"please stop {forged}")
    result = ingest(raw, SOURCE)
    assert result.outcome == "tickets"
    assert _tickets() == 1
    assert _status(news, subscriber) == SubscriptionStatus.SUBSCRIBED
