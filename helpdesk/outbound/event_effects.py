"""What provider events change: deliveries, transactional mail, suppressions, subscriptions.

Called by :func:`helpdesk.outbound.events.ingest_events` with the events that were new;
each function works on the whole batch in a few statements.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.database import upsert, utcnow
from helpdesk.extensions import db
from helpdesk.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    OutboundMessage,
    OutboundStatus,
    Suppression,
    SuppressionReason,
)
from helpdesk.models.audience import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from helpdesk.outbound.events import _Event

# SendGrid drops mail to addresses on its own lists; these reasons mean ours should hold them.
_DROP_SUPPRESSION = {
    "bounced address": SuppressionReason.HARD_BOUNCE,
    "spam reporting address": SuppressionReason.COMPLAINT,
}
_BLOCKING = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)
CHUNK = 500  # rows per multi-row INSERT: well under SQLite's bound-parameter limit
_FIRST_TIMES = {
    "delivered": "delivered_at",
    "bounce": "bounced_at",
    "spamreport": "complained_at",
    "unsubscribe": "unsubscribed_at",
    "group_unsubscribe": "unsubscribed_at",
    "open": "opened_at",
    "click": "clicked_at",
}


def suppress(rows: dict[str, SuppressionReason], source: str) -> int:
    """Suppress addresses; a hard bounce or complaint outranks an unsubscribe already kept."""
    rows = {k: v for k, v in rows.items() if addresses.is_valid(k)}
    if not rows:
        return 0
    insert = functools.partial(upsert, db.session)
    now = utcnow()
    items = sorted(rows.items())
    added = 0
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        added += len(
            db.session.scalars(
                insert(Suppression)
                .values(
                    [
                        {"address_key": k, "reason": r, "source": source, "created_at": now}
                        for k, r in chunk
                    ]
                )
                .on_conflict_do_nothing(index_elements=["address_key"])
                .returning(Suppression.id)
            ).all()
        )
    for reason in _BLOCKING:
        keys = [k for k, r in items if r == reason]
        if keys:
            db.session.execute(
                sa.update(Suppression)
                .where(
                    Suppression.address_key.in_(keys),
                    Suppression.reason.not_in(_BLOCKING),
                )
                .values(reason=reason, source=source)
            )
    return added


def suppressions(events: list[_Event]) -> dict[str, SuppressionReason]:
    wanted: dict[str, SuppressionReason] = {}
    for e in events:
        reason = None
        if e.is_hard_bounce:
            reason = SuppressionReason.HARD_BOUNCE
        elif e.kind == "spamreport":
            reason = SuppressionReason.COMPLAINT
        elif e.kind == "dropped":
            reason = _DROP_SUPPRESSION.get(str(e.payload.get("reason", "")).strip().lower())
        elif e.kind == "unsubscribe":
            reason = SuppressionReason.UNSUBSCRIBE_ALL
        if reason is None or not e.email:
            continue
        # A complaint or hard bounce wins over an unsubscribe for the same address.
        if wanted.get(e.email) not in _BLOCKING:
            wanted[e.email] = reason
    return wanted


def apply_to_deliveries(events: list[_Event]) -> set[int]:
    """Update each named delivery from its new events; return the campaigns touched."""
    by_delivery: dict[int, list[_Event]] = defaultdict(list)
    for e in events:
        if e.delivery_id is not None:
            by_delivery[e.delivery_id].append(e)
    if not by_delivery:
        return set()
    columns = (
        Delivery.id,
        Delivery.campaign_id,
        Delivery.subscriber_id,
        Delivery.status,
        Delivery.provider_id,
        Delivery.sent_at,
        Delivery.event_at,
        *(getattr(Delivery, name) for name in set(_FIRST_TIMES.values())),
    )
    current = {
        row.id: row
        for row in db.session.execute(sa.select(*columns).where(Delivery.id.in_(by_delivery)))
    }
    now = utcnow()
    updates: list[dict[str, Any]] = []
    campaigns: set[int] = set()
    list_unsubscribes: set[tuple[int, int]] = set()  # (campaign, subscriber)
    for delivery_id, items in by_delivery.items():
        row = current[delivery_id]
        campaigns.add(row.campaign_id)
        values: dict[str, Any] = {}
        status = row.status
        if status == DeliveryStatus.UNCERTAIN:
            status = DeliveryStatus.SENT
            values["error"] = None
        latest_at = row.event_at
        for e in sorted(items, key=lambda e: e.occurred_at or now):
            when = e.occurred_at or now
            if latest_at is None or when >= latest_at:
                values["event"], values["event_at"], latest_at = e.kind, when, when
            first = _FIRST_TIMES.get(e.kind)
            if first and getattr(row, first) is None and first not in values:
                values[first] = when
            if row.provider_id is None and e.provider_prefix and "provider_id" not in values:
                values["provider_id"] = e.provider_prefix
            if row.sent_at is None and "sent_at" not in values:
                values["sent_at"] = when
            if e.kind == "bounce":
                values["error"] = f"{e.payload.get('type', 'bounce')}: {e.reason}"
            elif e.kind == "dropped" and status in (DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN):
                status = DeliveryStatus.FAILED
                values["error"] = f"dropped by the provider: {e.reason}"
            elif e.kind == "group_unsubscribe":
                list_unsubscribes.add((row.campaign_id, row.subscriber_id))
        if status != row.status:
            values["status"] = status
        if values:
            updates.append({"id": delivery_id, **values})
    if updates:
        # ORM bulk UPDATE by primary key: one executemany per shape of change. In id
        # order, so that two batches touching the same rows cannot deadlock.
        updates.sort(key=lambda values: values["id"])
        db.session.execute(sa.update(Delivery), updates)
    unsubscribe_from_lists(list_unsubscribes, now)
    return campaigns


def unsubscribe_from_lists(pairs: set[tuple[int, int]], now: datetime) -> None:
    if not pairs:
        return
    lists = dict(
        db.session.execute(
            sa.select(Campaign.id, Campaign.list_id).where(
                Campaign.id.in_({campaign for campaign, _ in pairs})
            )
        ).all()
    )
    by_list: dict[int, set[int]] = defaultdict(set)
    for campaign_id, subscriber_id in pairs:
        by_list[lists[campaign_id]].add(subscriber_id)
    for list_id, subscriber_ids in by_list.items():
        db.session.execute(
            sa.update(Subscription)
            .where(
                Subscription.list_id == list_id,
                Subscription.subscriber_id.in_(subscriber_ids),
                Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
            )
            .values(
                status=SubscriptionStatus.UNSUBSCRIBED,
                unsubscribed_at=now,
                unsubscribe_source="provider event: group_unsubscribe",
            )
        )


def apply_to_subscribers(wanted: dict[str, SuppressionReason]) -> None:
    status_for = {
        SuppressionReason.HARD_BOUNCE: SubscriberStatus.BOUNCED,
        SuppressionReason.COMPLAINT: SubscriberStatus.COMPLAINED,
        SuppressionReason.UNSUBSCRIBE_ALL: SubscriberStatus.UNSUBSCRIBED,
    }
    for reason, status in status_for.items():
        keys = [k for k, r in wanted.items() if r == reason]
        if keys:
            db.session.execute(
                sa.update(Subscriber)
                .where(
                    Subscriber.address_key.in_(keys),
                    Subscriber.status == SubscriberStatus.ACTIVE,
                )
                .values(status=status)
            )


def apply_to_outbound(events: list[_Event]) -> None:
    by_outbound: dict[int, list[_Event]] = defaultdict(list)
    for e in events:
        if e.outbound_id is not None:
            by_outbound[e.outbound_id].append(e)
    if not by_outbound:
        return
    current = {
        row.id: row
        for row in db.session.execute(
            sa.select(
                OutboundMessage.id,
                OutboundMessage.status,
                OutboundMessage.provider_id,
                OutboundMessage.sent_at,
            ).where(OutboundMessage.id.in_(by_outbound))
        )
    }
    for outbound_id, items in sorted(by_outbound.items()):
        row = current[outbound_id]
        values: dict[str, Any] = {}
        if row.status == OutboundStatus.UNCERTAIN:
            values["status"] = OutboundStatus.SENT
            values["error"] = None
        for e in sorted(items, key=lambda e: e.occurred_at or utcnow()):
            if row.provider_id is None and e.provider_prefix:
                values.setdefault("provider_id", e.provider_prefix)
            if row.sent_at is None:
                values.setdefault("sent_at", e.occurred_at or utcnow())
            accepted = row.status in (OutboundStatus.SENT, OutboundStatus.UNCERTAIN)
            if e.kind == "dropped" and accepted:
                values["status"] = OutboundStatus.FAILED
                values["error"] = f"dropped by the provider: {e.reason}"
            elif e.kind == "bounce":
                values["error"] = f"{e.payload.get('type', 'bounce')}: {e.reason}"
        if values:
            db.session.execute(
                sa.update(OutboundMessage).where(OutboundMessage.id == outbound_id).values(values)
            )
