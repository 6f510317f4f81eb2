"""Handing a claimed chunk to the mail backend, and recording what became of each row.

Suppression and subscription are checked in the hand-off UPDATE itself, the committed
step just before the request (later than the claim, so an unsubscribe holds for every
batch not yet handed off; rows that fail it end ``skipped``); pause and cancel are
checked there too, so they take effect within one batch. The request's answer then
settles each row: sent, failed, uncertain, or pending again when it provably never left.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models.audience import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from helpdesk.models.campaigns import Campaign, CampaignStatus, Delivery, DeliveryStatus
from helpdesk.outbound.bulk_claims import lease
from helpdesk.outbound.personalise import CampaignInfo, Group, backend_batch, finish_group
from helpdesk.outbound.segments import not_suppressed
from helpdesk.outbound.templates import TemplateProblem

MAX_ATTEMPTS = 8


def _reachable(list_id: int) -> sa.ColumnElement[bool]:
    """The delivery's subscriber may still receive this list's mail."""
    person = aliased(Subscriber)
    return sa.exists().where(
        person.id == Delivery.subscriber_id,
        person.status == SubscriberStatus.ACTIVE,
        not_suppressed(person),
        sa.exists().where(
            Subscription.subscriber_id == person.id,
            Subscription.list_id == list_id,
            Subscription.status == SubscriptionStatus.SUBSCRIBED,
        ),
    )


def start_hand_off(campaign: CampaignInfo, token: str, handing: str, ids: list[int]) -> set[int]:
    """The committed step before the request: claimed rows still due become handing-off."""
    handed = set(
        db.session.scalars(
            sa.update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.batch == token,
                Delivery.status == DeliveryStatus.CLAIMED,
                sa.exists().where(
                    Campaign.id == campaign.id, Campaign.status == CampaignStatus.SENDING
                ),
                _reachable(campaign.list_id),
            )
            .values(batch=handing, attempts=Delivery.attempts + 1, lease_until=utcnow() + lease())
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return handed


def send_chunk(campaign: CampaignInfo, group: Group, members, backend):
    """Post one chunk; (delivery id, outcome, provider id, error) per member."""
    from helpdesk.outbound.backends import Outcome

    try:
        if group.finished is None:
            group.finished = finish_group(group)
        html, text = group.finished
    except TemplateProblem as problem:
        # Nothing was sent: these fail visibly instead of staying uncertain.
        return [(m[0], Outcome.PERMANENT, None, str(problem)) for m in members]
    results = backend.send(backend_batch(campaign, group.subject, html, text, members))
    return [(members[r.index][0], r.outcome, r.provider_id, r.error) for r in results]


def record(outcomes, unsent: list[int], handing: str) -> None:
    """Record a round's outcomes; rows never posted (we know: we are alive) are pending."""
    from helpdesk.outbound.backends import Outcome

    now = utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        # Recording the outcome need not wait for the disk: were it lost in a crash, the
        # rows would still say "handing off" and become uncertain, never be resent.
        db.session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    by_outcome: dict[tuple[Any, str | None, str | None], list[int]] = defaultdict(list)
    for delivery_id, outcome, provider_id, error in outcomes:
        by_outcome[(outcome, provider_id, error)].append(delivery_id)
    if unsent:
        by_outcome[(None, None, None)].extend(unsent)
    # The hand-off's state is ours as long as the rows carry our token (an expired lease
    # may have turned them uncertain meanwhile: the answer we now have settles them).
    for (outcome, provider_id, error), ids in by_outcome.items():
        if outcome == Outcome.ACCEPTED:
            values = {
                "status": DeliveryStatus.SENT,
                "provider_id": provider_id,
                "sent_at": now,
                "error": None,
            }
        elif outcome == Outcome.PERMANENT:
            values = {"status": DeliveryStatus.FAILED, "error": error}
        elif outcome == Outcome.UNCERTAIN:
            values = {"status": DeliveryStatus.UNCERTAIN, "error": error}
        elif outcome is None:
            # Never posted: the rate limit kept them waiting too long.
            values = {"status": DeliveryStatus.PENDING, "batch": None}
        else:
            # Provably never accepted: pending again, unless it failed too often.
            db.session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.batch == handing,
                    Delivery.attempts >= MAX_ATTEMPTS,
                )
                .values(status=DeliveryStatus.FAILED, error=error, lease_until=None)
            )
            values = {"status": DeliveryStatus.PENDING, "error": error, "batch": None}
        for start in range(0, len(ids), 1000):
            db.session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.id.in_(ids[start : start + 1000]),
                    Delivery.batch == handing,
                    Delivery.status.in_((DeliveryStatus.CLAIMED, DeliveryStatus.UNCERTAIN)),
                )
                .values(lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
    db.session.commit()
