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

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from helpdesk import addresses
from helpdesk.database import upsert, utcnow
from helpdesk.extensions import db
from helpdesk.models import Delivery, OutboundMessage, ProviderEvent
from helpdesk.outbound import event_counts
from helpdesk.outbound import event_effects as effects
from helpdesk.outbound.autopause import campaign_stats, check_auto_pause
from helpdesk.outbound.event_effects import CHUNK

log = logging.getLogger(__name__)

__all__ = ["EventReport", "campaign_stats", "ingest_events", "store_unparsed"]

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
    insert = functools.partial(upsert, db.session)
    now = utcnow()
    fresh: set[str] = set()
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
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
        upsert(db.session, ProviderEvent)
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
    wanted = effects.suppressions(fresh)
    report.suppressed = effects.suppress(wanted, f"{provider} event")
    effects.apply_to_subscribers(wanted)
    campaigns = effects.apply_to_deliveries(fresh)
    effects.apply_to_outbound(fresh)
    for campaign_id in sorted(campaigns):
        if check_auto_pause(campaign_id):
            report.paused_campaigns.append(campaign_id)
    # Last, so that the rows of a campaign's current hour, which every batch about it
    # updates, stay locked for the shortest time: from here to the caller's commit.
    event_counts.add_events(provider, [e.event_id for e in fresh if e.delivery_id is not None])
    log.info(
        "%s events: %d received, %d new, %d duplicate, %d ignored",
        provider,
        report.received,
        report.new,
        report.duplicates,
        report.ignored,
    )
    return report
