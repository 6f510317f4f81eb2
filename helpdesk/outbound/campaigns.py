"""Campaigns: create, schedule, launch, pause, resume, cancel, and what became of them.

Launch is the one moment a campaign's audience is fixed: a conditional UPDATE moves it to
``sending`` (so two launchers, or a launcher and the scheduler, cannot both fire it), the
template and layout are frozen on the row, and ONE ``INSERT ... SELECT`` writes a Delivery
per recipient. Sending is done by batch jobs (helpdesk.outbound.bulk), which claim only
while the campaign is ``sending``: pause and cancel take effect at the next batch.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk.database import utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models.audience import MailingList, Subscriber
from helpdesk.models.campaigns import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
)
from helpdesk.outbound import segments, templates
from helpdesk.outbound.templates import Sources

log = logging.getLogger(__name__)

LAUNCHABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
OPEN = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
)
LATE_REASON = "missed its scheduled time by more than the grace period: launch it to confirm"


def get_campaign(campaign_id: int) -> Campaign:
    """The campaign, or NotFound."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def _default_from(mailing_list: MailingList) -> str:
    committee = mailing_list.committee
    if not committee.address_list:
        raise ServiceError(
            f"committee {committee.slug!r} has no mail address: give a From address",
            field="from_addr",
        )
    return formataddr((committee.name, committee.address_list[0]))


def create_campaign(
    list_slug: str,
    template_name: str,
    *,
    name: str | None = None,
    from_addr: str | None = None,
    reply_to: str | None = None,
    segment: dict[str, Any] | None = None,
    created_by_id: int | None = None,
) -> Campaign:
    """A draft campaign of template ``template_name`` to list ``list_slug``."""
    mailing_list = db.session.scalar(sa.select(MailingList).where(MailingList.slug == list_slug))
    if mailing_list is None:
        raise NotFound(f"no list {list_slug!r}", field="list")
    template = templates.get_template(template_name)
    campaign = Campaign(
        name=name or template.name,
        committee_id=mailing_list.committee_id,
        list_id=mailing_list.id,
        template_id=template.id,
        segment=segments.check_segment(segment),
        from_addr=from_addr or _default_from(mailing_list),
        reply_to=reply_to,
        status=CampaignStatus.DRAFT,
        created_by_id=created_by_id,
    )
    db.session.add(campaign)
    db.session.flush()
    return campaign


def schedule(campaign_id: int, when: datetime) -> Campaign:
    """Fire the campaign at ``when`` (UTC), once."""
    campaign = get_campaign(campaign_id)
    if campaign.status not in LAUNCHABLE:
        raise ServiceError(f"campaign {campaign_id} is {campaign.status.value}, not a draft")
    check_sendable(campaign)
    campaign.status = CampaignStatus.SCHEDULED
    campaign.scheduled_at = when
    campaign.pause_reason = None
    db.session.flush()
    return campaign


def sources_of(campaign: Campaign) -> Sources:
    """What the campaign sends: frozen at launch, the live template before."""
    if campaign.html is not None and campaign.subject is not None:
        return Sources(campaign.subject, campaign.html, campaign.text or "")
    return templates.compose(campaign.template, templates.layout_for(campaign.committee_id))


def check_sendable(campaign: Campaign, sources: Sources | None = None) -> None:
    """Render for a real recipient (or the sample when there is none); refuse any problem."""
    sources = sources or sources_of(campaign)
    first = db.session.execute(
        segments.recipients(campaign.list_id, campaign.segment).order_by(Subscriber.id).limit(1)
    ).first()
    subscriber = db.session.get(Subscriber, first.id) if first else None
    mail = templates.validate(
        sources, templates.sample_context(subscriber, campaign.mailing_list.name)
    )
    if mail.problems:
        raise ServiceError(f"campaign {campaign.id} cannot be sent: " + "; ".join(mail.problems))


def launch(campaign_id: int, *, scheduled: bool = False) -> int:
    """Start sending: freeze, write one Delivery per recipient, queue the batch jobs.

    ``scheduled`` is the scheduler firing a campaign on time; an organiser's launch of a
    scheduled campaign that is late is its confirmation. Returns the number of recipients.
    """
    from helpdesk.outbound import bulk

    campaign = get_campaign(campaign_id)
    if campaign.status not in LAUNCHABLE:
        raise ServiceError(f"campaign {campaign_id} is {campaign.status.value}; it cannot launch")
    sources = templates.compose(campaign.template, templates.layout_for(campaign.committee_id))
    check_sendable(campaign, sources)
    now = utcnow()
    condition = [Campaign.id == campaign_id, Campaign.status.in_(LAUNCHABLE)]
    if scheduled:
        condition += [Campaign.status == CampaignStatus.SCHEDULED, Campaign.pause_reason.is_(None)]
    # The lock: whoever moves the row out of draft/scheduled launches it, nobody else.
    won = db.session.execute(
        sa.update(Campaign)
        .where(*condition)
        .values(
            status=CampaignStatus.SENDING,
            launched_at=now,
            subject=sources.subject,
            html=sources.html,
            text=sources.text,
            pause_reason=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        db.session.rollback()
        raise ServiceError(f"campaign {campaign_id} was launched by someone else")
    audience = segments.recipients(campaign.list_id, campaign.segment).subquery()
    insert = sa.insert(Delivery).from_select(
        ["campaign_id", "subscriber_id", "address_key", "status", "attempts"],
        sa.select(
            sa.literal(campaign_id),
            audience.c.id,
            audience.c.address_key,
            sa.literal(DeliveryStatus.PENDING.value),
            sa.literal(0),
        ),
    )
    db.session.execute(insert)
    # (rowcount of INSERT ... SELECT is not reported by every driver)
    count = db.session.scalar(sa.select(sa.func.count()).where(Delivery.campaign_id == campaign_id))
    values: dict[str, Any] = {"recipient_count": count}
    if count == 0:
        values.update(status=CampaignStatus.SENT, finished_at=now)
    db.session.execute(sa.update(Campaign).where(Campaign.id == campaign_id).values(**values))
    db.session.expire(campaign)
    if count:
        bulk.start_lanes(campaign_id)
    db.session.commit()
    if count > 1000 and db.session.get_bind().dialect.name == "postgresql":
        # Fresh statistics, so the claims' plans know the table just grew by a campaign.
        db.session.execute(sa.text("ANALYZE deliveries"))
        db.session.commit()
    log.info("campaign %s launched to %d recipients", campaign_id, count)
    return count


def fire_due(now: datetime | None = None) -> list[int]:
    """Launch scheduled campaigns whose time has come; flag those too late to fire."""
    now = now or utcnow()
    grace = timedelta(minutes=current_app.config["HELPDESK_CAMPAIGN_GRACE_MINUTES"])
    due = db.session.execute(
        sa.select(Campaign.id, Campaign.scheduled_at).where(
            Campaign.status == CampaignStatus.SCHEDULED,
            Campaign.scheduled_at <= now,
            Campaign.pause_reason.is_(None),
        )
    ).all()
    fired = []
    for campaign_id, scheduled_at in due:
        if now - scheduled_at > grace:
            db.session.execute(
                sa.update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED)
                .values(pause_reason=LATE_REASON)
            )
            db.session.commit()
            log.warning("campaign %s is late; it waits for confirmation", campaign_id)
            continue
        try:
            launch(campaign_id, scheduled=True)
        except ServiceError as error:
            db.session.rollback()
            log.warning("scheduled campaign %s did not fire: %s", campaign_id, error.message)
            continue
        fired.append(campaign_id)
    return fired


def _move(
    campaign_id: int, from_: tuple[CampaignStatus, ...], to: CampaignStatus, **values
) -> None:
    moved = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(from_))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        campaign = get_campaign(campaign_id)
        raise ServiceError(
            f"campaign {campaign_id} is {campaign.status.value}; it cannot become {to.value}"
        )
    db.session.expire_all()


def pause(campaign_id: int, reason: str | None = None) -> None:
    """Stop claiming batches; a batch already claimed but not handed off is released."""
    _move(campaign_id, (CampaignStatus.SENDING,), CampaignStatus.PAUSED, pause_reason=reason)
    db.session.commit()


def resume(campaign_id: int) -> None:
    """Carry on sending a paused campaign."""
    from helpdesk.outbound import bulk

    _move(campaign_id, (CampaignStatus.PAUSED,), CampaignStatus.SENDING, pause_reason=None)
    bulk.start_lanes(campaign_id)
    db.session.commit()


def cancel(campaign_id: int) -> int:
    """Send nothing more; returns how many deliveries were cancelled."""
    _move(campaign_id, OPEN, CampaignStatus.CANCELLED, finished_at=utcnow())
    count = db.session.execute(
        sa.update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED)
    ).rowcount
    db.session.commit()
    return count


def resolve_uncertain(campaign_id: int, *, resend: bool) -> int:
    """The organiser's decision on uncertain deliveries: send them again, or drop them."""
    from helpdesk.outbound import bulk

    campaign = get_campaign(campaign_id)
    values: dict[str, Any]
    if resend:
        values = {"status": DeliveryStatus.PENDING, "batch": None, "lease_until": None}
    else:
        values = {"status": DeliveryStatus.DROPPED}
    count = db.session.execute(
        sa.update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.UNCERTAIN)
        .values(**values)
    ).rowcount
    if resend and count:
        if campaign.status == CampaignStatus.SENT:
            campaign.status = CampaignStatus.SENDING
            campaign.finished_at = None
        if campaign.status == CampaignStatus.SENDING:
            bulk.start_lanes(campaign_id)
    db.session.commit()
    return count


def counts(campaign_id: int) -> dict[str, int]:
    """Deliveries per status (every status present, zeros included)."""
    rows = db.session.execute(
        sa.select(Delivery.status, sa.func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    ).all()
    result = {s.value: 0 for s in DeliveryStatus}
    for status, n in rows:
        result[DeliveryStatus(status).value] = n
    return result


def status(campaign_id: int) -> dict[str, Any]:
    """The campaign's state, counts, sending rate over the last minute, and an ETA."""
    campaign = get_campaign(campaign_id)
    by_status = counts(campaign_id)
    now = utcnow()
    recent = db.session.scalar(
        sa.select(sa.func.count()).where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at >= now - timedelta(minutes=1),
        )
    )
    rate = recent / 60.0
    remaining = by_status["pending"] + by_status["claimed"]
    eta = round(remaining / rate) if rate and remaining else None
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status.value,
        "list": campaign.mailing_list.slug,
        "template": campaign.template.name,
        "recipients": campaign.recipient_count,
        "counts": by_status,
        "remaining": remaining,
        "rate_per_second": round(rate, 2),
        "eta_seconds": eta,
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "launched_at": campaign.launched_at.isoformat() if campaign.launched_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
        "pause_reason": campaign.pause_reason,
    }
