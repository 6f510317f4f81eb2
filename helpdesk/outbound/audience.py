"""Subscribers and subscriptions: who may receive bulk mail, with their consent.

Every subscription keeps a consent record (when, how, from where). Unsubscribing from one
list ends that subscription; unsubscribing from everything ends them all and puts the
address on the global suppression list, which the campaign engine checks at claim time.

The lists themselves are in :mod:`helpdesk.outbound.mailing_lists`; their functions are
re-exported here, so ``audience`` remains the one entry point for lists, subscribers and
subscriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    ConsentMethod,
    Contact,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from helpdesk.outbound import suppressions
from helpdesk.outbound.mailing_lists import (
    SubscriberPage,
    add_list,
    get_list,
    list_counts,
    search_subscribers,
)

# The whole interface, the list functions re-exported from mailing_lists included.
__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_CHARS",
    "MAX_NAME",
    "ConfirmOutcome",
    "SubscriberPage",
    "add_by_hand",
    "add_list",
    "clean_attributes",
    "clean_language",
    "confirm_subscription",
    "find_subscriber",
    "get_list",
    "get_subscription",
    "list_counts",
    "search_subscribers",
    "subscribe",
    "subscriber_lists",
    "unsubscribe",
    "unsubscribe_all",
    "update_preferences",
    "upsert_subscriber",
]

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,2}$")
MAX_NAME = 300
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_CHARS = 1000


# -- subscribers ----------------------------------------------------------------------------


def clean_language(language: str | None) -> str:
    """A language tag such as ``en`` or ``pt-BR``, or empty; ServiceError otherwise."""
    language = (language or "").strip()
    if language and not _LANGUAGE.match(language):
        raise ServiceError(f"{language!r} is not a language tag like en or pt-BR", field="language")
    return language


def clean_attributes(attributes: dict[str, Any] | None) -> dict[str, str]:
    """Attributes as short strings with non-empty names."""
    cleaned: dict[str, str] = {}
    for key, value in (attributes or {}).items():
        key = str(key).strip()
        if not key:
            continue
        cleaned[key[:100]] = "" if value is None else str(value)[:MAX_ATTRIBUTE_CHARS]
    if len(cleaned) > MAX_ATTRIBUTES:
        raise ServiceError(f"at most {MAX_ATTRIBUTES} attributes", field="attributes")
    return cleaned


def find_subscriber(address: str) -> Subscriber | None:
    """The subscriber with ``address`` (any case), if any."""
    key = addresses.normalize(address)
    return db.session.scalar(sa.select(Subscriber).where(Subscriber.address_key == key))


def upsert_subscriber(
    email: str,
    *,
    name: str | None = None,
    language: str | None = None,
    attributes: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Subscriber:
    """Create the subscriber for ``email`` or update it.

    Given values replace stored ones when ``overwrite`` (an organiser's data), and only
    fill empty ones otherwise (a public form, where anyone may type any address).
    Attributes are merged. The subscriber is linked to the helpdesk contact with the same
    address.
    """
    email = addresses.require_valid(email)
    key = addresses.normalize(email)
    name = (name or "").strip()[:MAX_NAME]
    language = clean_language(language)
    attributes = clean_attributes(attributes)
    subscriber = find_subscriber(key)
    if subscriber is None:
        subscriber = Subscriber(
            address_key=key,
            email=email,
            name=name,
            language=language,
            attributes=attributes,
            status=SubscriberStatus.ACTIVE,
        )
        db.session.add(subscriber)
    else:
        if name and (overwrite or not subscriber.name):
            subscriber.name = name
        if language and (overwrite or not subscriber.language):
            subscriber.language = language
        if attributes:
            merged = dict(subscriber.attributes or {})
            for k, v in attributes.items():
                if overwrite or k not in merged:
                    merged[k] = v
            subscriber.attributes = merged
    if subscriber.contact_id is None:
        subscriber.contact_id = db.session.scalar(
            sa.select(Contact.id).where(Contact.email_key == key)
        )
    db.session.flush()
    return subscriber


def update_preferences(subscriber_id: int, *, name: str, language: str) -> Subscriber:
    """The subscriber changes their own name and language."""
    subscriber = _subscriber(subscriber_id)
    subscriber.name = name.strip()[:MAX_NAME]
    subscriber.language = clean_language(language)
    db.session.flush()
    return subscriber


def _subscriber(subscriber_id: int) -> Subscriber:
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("no such subscriber")
    return subscriber


# -- subscriptions --------------------------------------------------------------------------


def get_subscription(list_id: int, subscriber_id: int) -> Subscription | None:
    """The subscription of a subscriber to a list, in any status."""
    return db.session.scalar(
        sa.select(Subscription).where(
            Subscription.list_id == list_id, Subscription.subscriber_id == subscriber_id
        )
    )


def subscribe(
    list_id: int,
    subscriber_id: int,
    *,
    method: ConsentMethod | str,
    source: str,
    pending: bool = False,
) -> Subscription:
    """Subscribe with a consent record (``pending`` waits for a double opt-in confirmation).

    Refused for a suppressed address and for one that unsubscribed from this list: only
    its owner may come back, through a confirmed form. A live subscription is kept as it
    is, with its first consent record.
    """
    subscriber = _subscriber(subscriber_id)
    reason = suppressions.suppressed_among([subscriber.address_key]).get(subscriber.address_key)
    # A pending subscription receives nothing; its confirmation checks again.
    if reason is not None and not pending:
        raise ServiceError(
            f"{subscriber.address_key} is suppressed ({reason.value})", field="email"
        )
    subscription = get_subscription(list_id, subscriber_id)
    now = utcnow()
    if subscription is None:
        subscription = Subscription(
            list_id=list_id,
            subscriber_id=subscriber_id,
            status=SubscriptionStatus.PENDING if pending else SubscriptionStatus.SUBSCRIBED,
            consent_at=now,
            consent_method=ConsentMethod(method),
            consent_source=source[:2000],
            confirmed_at=None if pending else now,
        )
        db.session.add(subscription)
    elif subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        raise ServiceError(
            f"{subscriber.address_key} unsubscribed from this list and can only come back "
            "through the subscribe form",
            field="email",
        )
    elif subscription.status == SubscriptionStatus.PENDING and not pending:
        _mark_subscribed(subscription, ConsentMethod(method), source)
    db.session.flush()
    return subscription


def _mark_subscribed(subscription: Subscription, method: ConsentMethod, source: str) -> None:
    now = utcnow()
    subscription.status = SubscriptionStatus.SUBSCRIBED
    subscription.consent_at = now
    subscription.consent_method = method
    subscription.consent_source = source[:2000]
    subscription.confirmed_at = now
    subscription.unsubscribed_at = None
    subscription.unsubscribe_source = None


def unsubscribe(list_id: int, subscriber_id: int, source: str) -> bool:
    """End one subscription; True if it was live (pending or subscribed). Idempotent."""
    changed = db.session.execute(
        sa.update(Subscription)
        .where(
            Subscription.list_id == list_id,
            Subscription.subscriber_id == subscriber_id,
            Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
        )
        .values(
            status=SubscriptionStatus.UNSUBSCRIBED,
            unsubscribed_at=utcnow(),
            unsubscribe_source=source[:2000],
        )
        .execution_options(synchronize_session="fetch")
    ).rowcount
    return bool(changed)


def unsubscribe_all(subscriber_id: int, source: str) -> int:
    """End every subscription and suppress the address; returns how many were live."""
    subscriber = _subscriber(subscriber_id)
    changed = db.session.execute(
        sa.update(Subscription)
        .where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
        )
        .values(
            status=SubscriptionStatus.UNSUBSCRIBED,
            unsubscribed_at=utcnow(),
            unsubscribe_source=source[:2000],
        )
        .execution_options(synchronize_session="fetch")
    ).rowcount
    suppressions.suppress(subscriber.address_key, SuppressionReason.UNSUBSCRIBE_ALL, source)
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    db.session.flush()
    return changed


@dataclass(frozen=True)
class ConfirmOutcome:
    """What confirming a double opt-in did."""

    subscription: Subscription
    newly_confirmed: bool


def confirm_subscription(subscription_id: int, source: str) -> ConfirmOutcome:
    """Confirm a double opt-in (or a return after unsubscribing): the owner clicked the link.

    Confirming proves the address's owner wants the mail, so it also lifts their own
    earlier "unsubscribe from everything"; hard bounces, complaints and manual
    suppressions stay and refuse the confirmation.
    """
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound("this confirmation link is no longer valid")
    if subscription.status == SubscriptionStatus.SUBSCRIBED:
        return ConfirmOutcome(subscription, False)
    subscriber = subscription.subscriber
    suppression = db.session.scalar(
        sa.select(Suppression).where(Suppression.address_key == subscriber.address_key)
    )
    if suppression is not None:
        if suppression.reason != SuppressionReason.UNSUBSCRIBE_ALL:
            raise ServiceError("this address cannot receive mail from us", field="email")
        db.session.delete(suppression)
    subscriber.status = SubscriberStatus.ACTIVE
    _mark_subscribed(subscription, ConsentMethod.FORM, source)
    db.session.flush()
    return ConfirmOutcome(subscription, True)


def subscriber_lists(subscriber_id: int) -> list[tuple[Subscription, MailingList]]:
    """A subscriber's subscriptions (any status) with their lists, by list name."""
    rows = db.session.execute(
        sa.select(Subscription, MailingList)
        .join(MailingList, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(MailingList.name)
    )
    return [(s, m) for s, m in rows]


def add_by_hand(
    list_id: int,
    email: str,
    *,
    name: str = "",
    language: str = "",
    actor_id: int | None,
) -> Subscription:
    """An organiser adds a subscriber to a list, vouching for their consent."""
    subscriber = upsert_subscriber(email, name=name, language=language)
    return subscribe(list_id, subscriber.id, method=ConsentMethod.ADMIN, source=f"user {actor_id}")
