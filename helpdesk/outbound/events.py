"""Provider events (SendGrid's Event Webhook) applied to what we sent.

Each event is kept once per ``sg_event_id`` (an insert-or-ignore on ProviderEvent), so a
batch that SendGrid posts again, or an attacker replays, counts once. Only the events
that were new are applied: to the campaign Delivery or transactional OutboundMessage
they name, to the suppression list, to subscriptions, and to the campaign's figures,
which may pause a campaign whose bounces or complaints run too high.

Which of our rows an event is about comes from the custom_args we send, which SendGrid
copies to the top level of every event:

- ``delivery_id``: one recipient of a campaign (a Delivery row);
- ``outbound_message_id``: one transactional mail (an OutboundMessage row); the older
  name ``outbound_id`` is read too.

Without them, the event's ``sg_message_id`` (the request's X-Message-Id, a dot, then a
per-recipient suffix) is matched against the provider id stored at hand-off, together
with the address for campaign deliveries (one request carries many recipients).

Any event about a row proves the provider accepted it: an ``uncertain`` row becomes
``sent``. Work is set-based: a batch of a thousand events costs a handful of statements.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    OutboundMessage,
    OutboundStatus,
    ProviderEvent,
    Suppression,
    SuppressionReason,
)
from helpdesk.models.audience import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
EVENT_TYPES = frozenset(
    {
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "open",
        "click",
    }
)
# SendGrid drops mail to addresses on its own lists; these reasons mean ours should hold them.
_DROP_SUPPRESSION = {
    "bounced address": SuppressionReason.HARD_BOUNCE,
    "spam reporting address": SuppressionReason.COMPLAINT,
}
_BLOCKING = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)
_CHUNK = 500  # rows per multi-row INSERT: well under SQLite's bound-parameter limit
_FIRST_TIMES = {
    "delivered": "delivered_at",
    "bounce": "bounced_at",
    "spamreport": "complained_at",
    "unsubscribe": "unsubscribed_at",
    "group_unsubscribe": "unsubscribed_at",
    "open": "opened_at",
    "click": "clicked_at",
}


@dataclass
class EventReport:
    """What one webhook batch did."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    ignored: int = 0  # entries that are not events of a known shape
    suppressed: int = 0
    paused_campaigns: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the webhook's answer."""
        return {
            "received": self.received,
            "new": self.new,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "paused_campaigns": self.paused_campaigns,
        }


@dataclass
class _Event:
    event_id: str
    kind: str
    email: str
    occurred_at: datetime | None
    payload: dict[str, Any]
    delivery_id: int | None = None
    outbound_id: int | None = None

    @property
    def provider_prefix(self) -> str | None:
        value = self.payload.get("sg_message_id")
        return value.split(".", 1)[0] if isinstance(value, str) and value else None

    @property
    def is_hard_bounce(self) -> bool:
        return self.kind == "bounce" and self.payload.get("type", "bounce") != "blocked"

    @property
    def reason(self) -> str:
        return str(self.payload.get("reason") or self.payload.get("response") or "")[:2000]


def _insert():
    return pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _int_arg(payload: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def _occurred(payload: dict[str, Any]) -> datetime | None:
    stamp = payload.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _event_id(payload: dict[str, Any]) -> str:
    value = payload.get("sg_event_id")
    if isinstance(value, str) and value.strip():
        return value.strip()[:255]
    # SendGrid always sends one; an id made from the content still dedupes a replay.
    canonical = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _parse(entries: list[Any], report: EventReport) -> list[_Event]:
    events: dict[str, _Event] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("event") not in EVENT_TYPES:
            report.ignored += 1
            continue
        event_id = _event_id(entry)
        if event_id in events:
            report.duplicates += 1
            continue
        email = entry.get("email")
        events[event_id] = _Event(
            event_id=event_id,
            kind=entry["event"],
            email=addresses.normalize(email)[:320] if isinstance(email, str) else "",
            occurred_at=_occurred(entry),
            payload=entry,
            delivery_id=_int_arg(entry, "delivery_id"),
            outbound_id=_int_arg(entry, "outbound_message_id", "outbound_id"),
        )
    return list(events.values())


def _existing(model, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(model.id).where(model.id.in_(ids))))


def _resolve(events: list[_Event]) -> None:
    """Point each event at our row: custom_args first, else the provider's message id."""
    deliveries = _existing(Delivery, {e.delivery_id for e in events if e.delivery_id})
    outbound = _existing(OutboundMessage, {e.outbound_id for e in events if e.outbound_id})
    for e in events:
        if e.delivery_id not in deliveries:
            e.delivery_id = None
        if e.outbound_id not in outbound:
            e.outbound_id = None
    unmatched = {
        e.provider_prefix
        for e in events
        if e.delivery_id is None and e.outbound_id is None and e.provider_prefix
    }
    if not unmatched:
        return
    by_delivery = {
        (provider_id, address_key): delivery_id
        for delivery_id, provider_id, address_key in db.session.execute(
            sa.select(Delivery.id, Delivery.provider_id, Delivery.address_key).where(
                Delivery.provider_id.in_(unmatched)
            )
        )
    }
    by_outbound = dict(
        db.session.execute(
            sa.select(OutboundMessage.provider_id, OutboundMessage.id).where(
                OutboundMessage.provider_id.in_(unmatched)
            )
        ).all()
    )
    for e in events:
        if e.delivery_id is None and e.outbound_id is None and e.provider_prefix:
            e.delivery_id = by_delivery.get((e.provider_prefix, e.email))
            if e.delivery_id is None:
                e.outbound_id = by_outbound.get(e.provider_prefix)


def _store(events: list[_Event], provider: str) -> list[_Event]:
    """Insert the events, ignoring those already kept; return the ones that were new."""
    insert = _insert()
    now = utcnow()
    fresh: set[str] = set()
    for start in range(0, len(events), _CHUNK):
        chunk = events[start : start + _CHUNK]
        statement = (
            insert(ProviderEvent)
            .values(
                [
                    {
                        "provider": provider,
                        "event_id": e.event_id,
                        "event": e.kind,
                        "email": e.email,
                        "occurred_at": e.occurred_at,
                        "delivery_id": e.delivery_id,
                        "outbound_message_id": e.outbound_id,
                        "payload": e.payload,
                        "received_at": now,
                    }
                    for e in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(ProviderEvent.event_id)
        )
        fresh.update(db.session.scalars(statement))
    return [e for e in events if e.event_id in fresh]


def store_unparsed(body: bytes, error: str, provider: str = PROVIDER) -> None:
    """Keep a signed request body that could not be read as events, for a later look."""
    digest = hashlib.sha256(body).hexdigest()
    db.session.execute(
        _insert()(ProviderEvent)
        .values(
            provider=provider,
            event_id=f"unparsed:{digest}",
            event="unparsed",
            email="",
            payload={"error": error, "body": body.decode("utf-8", "replace")},
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
    )


def _suppress(rows: dict[str, SuppressionReason], source: str) -> int:
    """Suppress addresses; a hard bounce or complaint outranks an unsubscribe already kept."""
    rows = {k: v for k, v in rows.items() if addresses.is_valid(k)}
    if not rows:
        return 0
    insert = _insert()
    now = utcnow()
    items = sorted(rows.items())
    added = 0
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
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


def _suppressions(events: list[_Event]) -> dict[str, SuppressionReason]:
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


def _apply_to_deliveries(events: list[_Event]) -> set[int]:
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
        # ORM bulk UPDATE by primary key: one executemany per shape of change.
        db.session.execute(sa.update(Delivery), updates)
    _unsubscribe_from_lists(list_unsubscribes, now)
    return campaigns


def _unsubscribe_from_lists(pairs: set[tuple[int, int]], now: datetime) -> None:
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


def _apply_to_subscribers(wanted: dict[str, SuppressionReason]) -> None:
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


def _apply_to_outbound(events: list[_Event]) -> None:
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
    for outbound_id, items in by_outbound.items():
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


def ingest_events(entries: list[Any], provider: str = PROVIDER) -> EventReport:
    """Keep and apply a batch of provider events; the caller commits."""
    report = EventReport(received=len(entries))
    events = _parse(entries, report)
    _resolve(events)
    fresh = _store(events, provider)
    report.new = len(fresh)
    report.duplicates += len(events) - len(fresh)
    if not fresh:
        return report
    wanted = _suppressions(fresh)
    report.suppressed = _suppress(wanted, f"{provider} event")
    _apply_to_subscribers(wanted)
    campaigns = _apply_to_deliveries(fresh)
    _apply_to_outbound(fresh)
    from helpdesk.outbound.autopause import check_auto_pause

    for campaign_id in sorted(campaigns):
        if check_auto_pause(campaign_id):
            report.paused_campaigns.append(campaign_id)
    log.info(
        "%s events: %d received, %d new, %d duplicate, %d ignored",
        provider,
        report.received,
        report.new,
        report.duplicates,
        report.ignored,
    )
    return report
