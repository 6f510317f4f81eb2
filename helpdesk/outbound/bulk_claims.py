"""Claims on a campaign's deliveries: who holds which rows, for how long, and recovery.

A delivery moves pending -> claimed -> sent (or failed, skipped, uncertain). Its ``batch``
column says how far a claim got, each step committed before the next begins:

* ``c:TOKEN`` claimed, nothing sent. If the worker dies, the lease expires and the
  sweeper returns the row to pending: provably nothing left for it.
* ``h:TOKEN`` handing off: committed just before the request is made. If the worker
  dies now, or the request's answer is lost, nobody knows whether the provider took it:
  the row becomes ``uncertain`` and is never resent automatically (the organiser
  resolves it, or a provider event carrying its delivery id does).

The hand-off itself (``c:`` to ``h:``, the request, the outcome) is in
:mod:`helpdesk.outbound.bulk_handoff`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models.campaigns import Campaign, CampaignStatus, Delivery, DeliveryStatus

log = logging.getLogger(__name__)

CLAIMED, HANDING = "c:", "h:"
UNCERTAIN_ERROR = "the worker stopped during the hand-off; the provider may have it"


def lease() -> timedelta:
    """How long a claim holds its rows before the sweeper may take them back."""
    return timedelta(seconds=current_app.config["HELPDESK_CAMPAIGN_LEASE_SECONDS"])


def claim(campaign_id: int, size: int) -> str | None:
    """Claim up to ``size`` pending deliveries of a sending campaign; commits; the token."""
    token = CLAIMED + secrets.token_hex(12)
    pick = (
        sa.select(Delivery.id)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING)
        .order_by(Delivery.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    claimed = db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.id.in_(pick.scalar_subquery()),
            Delivery.status == DeliveryStatus.PENDING,
            sa.exists().where(
                Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING
            ),
        )
        .values(status=DeliveryStatus.CLAIMED, batch=token, lease_until=utcnow() + lease())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return token if claimed else None


def release(token: str) -> None:
    """Give the claim's rows not yet handed off back to pending, for a later batch."""
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.batch == token, Delivery.status == DeliveryStatus.CLAIMED)
        .values(status=DeliveryStatus.PENDING, batch=None, lease_until=None)
    )


def settle_left_behind(campaign_id: int, token: str) -> None:
    """Rows of the claim that were not handed off: the campaign stopped, or they left."""
    state = db.session.scalar(sa.select(Campaign.status).where(Campaign.id == campaign_id))
    if state == CampaignStatus.SENDING:
        values = {"status": DeliveryStatus.SKIPPED, "error": "unsubscribed or suppressed"}
    elif state == CampaignStatus.CANCELLED:
        values = {"status": DeliveryStatus.CANCELLED}
    else:
        values = {"status": DeliveryStatus.PENDING}
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.batch == token, Delivery.status == DeliveryStatus.CLAIMED)
        .values(batch=None, lease_until=None, **values)
    )


def expire_leases() -> tuple[int, int]:
    """Claims whose worker vanished: back to pending if nothing left, else uncertain."""
    now = utcnow()
    stale = [Delivery.status == DeliveryStatus.CLAIMED, Delivery.lease_until < now]
    returned = db.session.execute(
        sa.update(Delivery)
        .where(*stale, Delivery.batch.like(CLAIMED + "%"))
        .values(status=DeliveryStatus.PENDING, batch=None, lease_until=None)
    ).rowcount
    uncertain = db.session.execute(
        sa.update(Delivery)
        .where(*stale, Delivery.batch.like(HANDING + "%"))
        .values(status=DeliveryStatus.UNCERTAIN, error=UNCERTAIN_ERROR)
    ).rowcount
    db.session.commit()
    if returned or uncertain:
        log.warning("leases expired: %d back to pending, %d uncertain", returned, uncertain)
    return returned, uncertain
