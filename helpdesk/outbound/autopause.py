"""Per-campaign figures from deliveries and provider events, and the automatic pause.

A campaign whose bounces or spam complaints run above the configured shares of its sent
mail (after a minimum number sent) pauses itself: mailing on would harm the sender's
reputation with every mailbox provider.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk.extensions import db
from helpdesk.models import Campaign, CampaignStatus, Delivery, DeliveryStatus

log = logging.getLogger(__name__)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def campaign_stats(campaign_id: int) -> dict[str, Any]:
    """A campaign's figures from its deliveries and their provider events."""
    sent_condition = sa.or_(
        Delivery.status == DeliveryStatus.SENT,
        sa.and_(Delivery.status == DeliveryStatus.FAILED, Delivery.event.is_not(None)),
    )

    def count_if(condition):
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        sa.select(
            sa.func.count(Delivery.id).label("recipients"),
            count_if(sent_condition).label("sent"),
            count_if(Delivery.status == DeliveryStatus.UNCERTAIN).label("uncertain"),
            count_if(Delivery.status == DeliveryStatus.FAILED).label("failed"),
            count_if(Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.CLAIMED))).label(
                "remaining"
            ),
            sa.func.count(Delivery.delivered_at).label("delivered"),
            sa.func.count(Delivery.bounced_at).label("bounced"),
            sa.func.count(Delivery.complained_at).label("complaints"),
            sa.func.count(Delivery.unsubscribed_at).label("unsubscribes"),
            sa.func.count(Delivery.opened_at).label("opens"),
            sa.func.count(Delivery.clicked_at).label("clicks"),
        ).where(Delivery.campaign_id == campaign_id)
    ).one()
    stats: dict[str, Any] = {key: int(value) for key, value in row._mapping.items()}
    sent = stats["sent"]
    for name, key in (
        ("delivery_rate", "delivered"),
        ("bounce_rate", "bounced"),
        ("complaint_rate", "complaints"),
        ("unsubscribe_rate", "unsubscribes"),
        ("open_rate", "opens"),
        ("click_rate", "clicks"),
    ):
        stats[name] = _rate(stats[key], sent)
    return stats


def check_auto_pause(campaign_id: int) -> str | None:
    """Pause a sending campaign whose bounce or complaint rate passed its limit.

    Returns the reason when it paused the campaign. The limits apply once the campaign
    has sent ``HELPDESK_PAUSE_MIN_DELIVERIES`` mails, so a few early bounces cannot stop it.
    """
    status = db.session.scalar(sa.select(Campaign.status).where(Campaign.id == campaign_id))
    if status != CampaignStatus.SENDING:
        return None
    config = current_app.config
    stats = campaign_stats(campaign_id)
    if stats["sent"] < config["HELPDESK_PAUSE_MIN_DELIVERIES"]:
        return None
    reason = None
    for label, key, limit in (
        ("bounces", "bounce_rate", config["HELPDESK_PAUSE_BOUNCE_RATE"]),
        ("spam complaints", "complaint_rate", config["HELPDESK_PAUSE_COMPLAINT_RATE"]),
    ):
        if stats[key] > limit:
            reason = (
                f"paused automatically: {label} reached {stats[key]:.2%} of "
                f"{stats['sent']} sent mails (limit {limit:.2%}); check the list before resuming"
            )
            break
    if reason is None:
        return None
    paused = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING)
        .values(status=CampaignStatus.PAUSED, pause_reason=reason)
    ).rowcount
    if not paused:
        return None
    log.warning("campaign %s %s", campaign_id, reason)
    return reason
