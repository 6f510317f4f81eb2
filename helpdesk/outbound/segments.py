"""Who a campaign goes to: a list's live subscriptions, narrowed by a segment, as one query.

A segment is ``{"contact_kinds": [...], "attributes": {...}, "languages": [...]}``; every
part is optional and the parts combine with AND (values within a part with OR). The
result is a SELECT of (subscriber id, address key) that launch inserts from directly and
that claim time re-checks against, so both use the same rules.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from helpdesk.errors import ServiceError
from helpdesk.models.audience import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.models.contacts import ContactKind, ContactKindName
from helpdesk.models.outbound import Suppression

SEGMENT_KEYS = ("contact_kinds", "attributes", "languages")


def check_segment(segment: Any) -> dict[str, Any]:
    """The segment normalised, or a ServiceError naming what is wrong with it."""
    if segment in (None, ""):
        return {}
    if not isinstance(segment, dict):
        raise ServiceError("a segment is a JSON object", field="segment")
    unknown = sorted(set(segment) - set(SEGMENT_KEYS))
    if unknown:
        raise ServiceError(
            f"unknown segment key(s) {', '.join(unknown)}; known: {', '.join(SEGMENT_KEYS)}",
            field="segment",
        )
    result: dict[str, Any] = {}
    kinds = segment.get("contact_kinds") or []
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ServiceError("contact_kinds is a list of names", field="segment.contact_kinds")
    known_kinds = {k.value for k in ContactKindName}
    bad = [k for k in kinds if k not in known_kinds]
    if bad:
        raise ServiceError(
            f"unknown contact kind(s) {', '.join(bad)}; known: {', '.join(sorted(known_kinds))}",
            field="segment.contact_kinds",
        )
    if kinds:
        result["contact_kinds"] = list(kinds)
    languages = segment.get("languages") or []
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise ServiceError("languages is a list of language codes", field="segment.languages")
    if languages:
        result["languages"] = [x.strip().lower() for x in languages]
    attributes = segment.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(v, str | int | float | bool) for v in attributes.values()
    ):
        raise ServiceError("attributes maps names to plain values", field="segment.attributes")
    if attributes:
        result["attributes"] = dict(attributes)
    return result


def _attribute_matches(name: str, value: Any) -> sa.ColumnElement[bool]:
    element = Subscriber.attributes[name]
    if isinstance(value, bool):
        return element.as_boolean() == value
    if isinstance(value, int):
        return element.as_integer() == value
    if isinstance(value, float):
        return element.as_float() == value
    return element.as_string() == value


def segment_conditions(segment: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions on Subscriber for a (checked) segment."""
    conditions: list[sa.ColumnElement[bool]] = []
    if segment.get("languages"):
        conditions.append(sa.func.lower(Subscriber.language).in_(segment["languages"]))
    if segment.get("contact_kinds"):
        conditions.append(
            sa.exists().where(
                ContactKind.contact_id == Subscriber.contact_id,
                ContactKind.kind.in_([ContactKindName(k) for k in segment["contact_kinds"]]),
            )
        )
    for name, value in (segment.get("attributes") or {}).items():
        conditions.append(_attribute_matches(name, value))
    return conditions


def not_suppressed(subscriber: Any = Subscriber) -> sa.ColumnElement[bool]:
    """The subscriber's address is not on the global suppression list."""
    return ~sa.exists().where(Suppression.address_key == subscriber.address_key)


def reachable(list_id: int | sa.ColumnElement[int]) -> list[sa.ColumnElement[bool]]:
    """Conditions (on Subscriber and Subscription) for a live subscriber of ``list_id``."""
    return [
        Subscription.list_id == list_id,
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
        Subscriber.status == SubscriberStatus.ACTIVE,
        not_suppressed(),
    ]


def recipients(list_id: int, segment: dict[str, Any] | None = None) -> sa.Select:
    """SELECT subscriber id and address key of everyone a campaign to ``list_id`` reaches."""
    return (
        sa.select(Subscriber.id, Subscriber.address_key)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(*reachable(list_id), *segment_conditions(check_segment(segment)))
    )


def count(list_id: int, segment: dict[str, Any] | None = None) -> int:
    """How many subscribers a campaign to ``list_id`` with ``segment`` would reach."""
    from helpdesk.extensions import db

    return db.session.scalar(
        sa.select(sa.func.count()).select_from(recipients(list_id, segment).subquery())
    )
