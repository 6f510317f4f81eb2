"""The public subscribe form's service: single opt-in, double opt-in, confirmation.

Whatever happens, the visitor sees the same answer, so the form never tells whether an
address is already subscribed, unsubscribed or suppressed. A double opt-in list (and a
return after unsubscribing, on any list, since anyone can type anyone's address) gets a
pending subscription and a signed confirmation link that expires
(helpdesk.outbound.tokens.CONFIRM_MAX_AGE).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app, render_template

from helpdesk import addresses
from helpdesk.errors import NotFound
from helpdesk.extensions import db
from helpdesk.inbound.threading import make_message_id
from helpdesk.models import (
    ConsentMethod,
    MailingList,
    OutboundKind,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from helpdesk.outbound import audience, suppressions
from helpdesk.outbound.tokens import confirm_token
from helpdesk.outbound.transactional import display_from, queue_message

log = logging.getLogger(__name__)


def public_list(slug: str) -> MailingList:
    """A list offered on the public form; NotFound for any other (private or missing)."""
    import sqlalchemy as sa

    found = db.session.scalar(
        sa.select(MailingList).where(MailingList.slug == slug, MailingList.public.is_(True))
    )
    if found is None:
        raise NotFound("no such list")
    return found


def request_subscription(list_slug: str, email: str, name: str, client: str) -> str:
    """Handle a subscribe form; returns what happened (for logs and tests, never shown).

    ``client`` is the visitor's address, kept in the consent record.
    """
    mailing_list = public_list(list_slug)
    email = addresses.require_valid(email)
    key = addresses.normalize(email)
    reason = suppressions.suppressed_among([key]).get(key)
    if reason is not None and reason != SuppressionReason.UNSUBSCRIBE_ALL:
        return "suppressed"
    subscriber = audience.upsert_subscriber(email, name=name, overwrite=False)
    subscription = audience.get_subscription(mailing_list.id, subscriber.id)
    source = f"form {client}"
    if subscription is not None and subscription.status == SubscriptionStatus.SUBSCRIBED:
        return "already subscribed"
    needs_confirmation = (
        mailing_list.double_opt_in or subscription is not None or reason is not None
    )
    if not needs_confirmation:
        audience.subscribe(mailing_list.id, subscriber.id, method=ConsentMethod.FORM, source=source)
        return "subscribed"
    if subscription is None:
        subscription = audience.subscribe(
            mailing_list.id, subscriber.id, method=ConsentMethod.FORM, source=source, pending=True
        )
    _send_confirmation(subscription, mailing_list)
    return "confirmation sent"


def _sender(mailing_list: MailingList) -> str:
    owner = mailing_list.committee
    if owner.address_list:
        return display_from(owner.name, owner.address_list[0])
    host = urlsplit(current_app.config["HELPDESK_BASE_URL"]).hostname or "localhost"
    return display_from(owner.name, f"noreply@{host}")


def confirm_url(subscription_id: int) -> str:
    """The confirmation link of a pending subscription."""
    base = current_app.config["HELPDESK_BASE_URL"]
    return f"{base}/subscribe/confirm/{confirm_token(subscription_id)}"


def _send_confirmation(subscription: Subscription, mailing_list: MailingList) -> None:
    subscriber = subscription.subscriber
    context = {
        "list_name": mailing_list.name,
        "committee_name": mailing_list.committee.name,
        "name": subscriber.name,
        "confirm_url": confirm_url(subscription.id),
    }
    queue_message(
        OutboundKind.TRANSACTIONAL,
        from_addr=_sender(mailing_list),
        to=[addresses.format_address(subscriber.name, subscriber.email)],
        subject=f"Please confirm your subscription to {mailing_list.name}",
        text=render_template("mail/subscribe_confirm.txt", **context),
        headers={"Auto-Submitted": "auto-generated"},
        message_id=make_message_id(),
    )
    log.info("confirmation mail queued for subscription %s", subscription.id)
