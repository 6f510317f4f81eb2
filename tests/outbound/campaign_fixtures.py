"""Factories for campaign tests: a list with subscribers, a template, a stand-in backend."""

from __future__ import annotations

import pytest

from helpdesk import addresses
from helpdesk.models import Campaign, MailTemplate
from helpdesk.models.audience import (
    ConsentMethod,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.outbound.templates import save_template
from tests.support.sendgrid_server import API_KEY

POSTAL = "Conference e.V., Hauptstr. 1, 10115 Berlin"
BODY = "<p>Dear {{ name }}, the schedule is out.</p>"


def add_list(session, committee, slug: str = "news") -> MailingList:
    """A list owned by ``committee``."""
    row = MailingList(slug=slug, name=f"{slug.title()} list", committee_id=committee.id)
    session.add(row)
    session.flush()
    return row


def add_campaign(session, committee, slug: str, **fields) -> Campaign:
    """A campaign of ``committee`` (Campaign ``fields``) on a new list ``slug``, with a
    plain template of the same name."""
    mailing_list = add_list(session, committee, slug)
    template = MailTemplate(name=slug, subject="Hi", html="<p>Hi</p>")
    session.add(template)
    session.flush()
    campaign = Campaign(
        committee_id=committee.id, list_id=mailing_list.id, template_id=template.id, **fields
    )
    session.add(campaign)
    session.flush()
    return campaign


def add_subscribers(session, mailing_list, count: int, *, start: int = 0, **fields) -> list:
    """``count`` subscribed subscribers person{i}@example.com on ``mailing_list``."""
    rows = []
    for i in range(start, start + count):
        email = f"person{i}@example.com"
        subscriber = Subscriber(
            address_key=addresses.normalize(email),
            email=email,
            name=f"Person {i}",
            language=fields.get("language", "en"),
            attributes=dict(fields.get("attributes", {})),
            contact_id=fields.get("contact_id"),
        )
        subscriber.subscriptions.append(
            Subscription(
                mailing_list=mailing_list,
                status=SubscriptionStatus.SUBSCRIBED,
                consent_method=ConsentMethod.ADMIN,
            )
        )
        session.add(subscriber)
        rows.append(subscriber)
    session.flush()
    return rows


@pytest.fixture
def postal(app, monkeypatch):
    """The sender's postal address is configured."""
    monkeypatch.setitem(app.config, "HELPDESK_POSTAL_ADDRESS", POSTAL)
    return POSTAL


@pytest.fixture
def via_stand_in(app, monkeypatch, stand_in):
    """Mail goes to the SendGrid stand-in."""
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_BACKEND", "sendgrid")
    monkeypatch.setitem(app.config, "HELPDESK_SENDGRID_API_KEY", API_KEY)
    monkeypatch.setitem(app.config, "HELPDESK_SENDGRID_HOST", stand_in.url)
    monkeypatch.setitem(app.config, "HELPDESK_MAIL_TIMEOUT", 5)
    return stand_in


@pytest.fixture
def newsletter(session, make_committee, postal):
    """``newsletter(count, body=..., subject=...)``: (committee, list, subscribers, template)."""

    def make(count: int = 5, *, body: str = BODY, subject: str = "News for {{ name }}"):
        committee = make_committee()
        mailing_list = add_list(session, committee, slug=f"news-{committee.slug}")
        subscribers = add_subscribers(session, mailing_list, count)
        template = save_template(
            f"tpl-{committee.slug}", subject=subject, html=body, committee_slug=committee.slug
        )
        return committee, mailing_list, subscribers, template

    return make
