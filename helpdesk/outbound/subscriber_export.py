"""CSV export of a list's subscribers, in the import's columns plus each subscription's."""

from __future__ import annotations

import csv
from typing import IO

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import Subscriber, Subscription
from helpdesk.outbound.subscriber_import import KNOWN_COLUMNS, SUBSCRIPTION_COLUMNS

# The import reads these columns back (the subscription ones are not attributes).
EXPORT_COLUMNS = [*KNOWN_COLUMNS, *SUBSCRIPTION_COLUMNS]


def _iso(value) -> str:
    return value.isoformat() if value is not None else ""


def export_csv(list_id: int, out: IO[str]) -> int:
    """Write a list's subscriptions (every status) as CSV; returns the number of rows.

    The first columns are the import's, so an export can be imported again; the
    subscribers' attributes follow as columns of their own.
    """
    attribute_names: set[str] = set()
    base = (
        sa.select(Subscription, Subscriber)
        .join(Subscriber, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == list_id)
    )
    for (attributes,) in db.session.execute(
        base.with_only_columns(Subscriber.attributes).execution_options(yield_per=2000)
    ):
        attribute_names.update((attributes or {}).keys())
    extra = sorted(attribute_names - set(EXPORT_COLUMNS))
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS + extra)
    count = 0
    for subscription, subscriber in db.session.execute(
        base.order_by(Subscriber.address_key).execution_options(yield_per=2000)
    ):
        attributes = subscriber.attributes or {}
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                subscriber.language,
                subscription.status.value,
                _iso(subscription.consent_at),
                subscription.consent_method.value,
                subscription.consent_source,
                _iso(subscription.confirmed_at),
                _iso(subscription.unsubscribed_at),
                subscription.unsubscribe_source or "",
                *(attributes.get(name, "") for name in extra),
            ]
        )
        count += 1
    return count
