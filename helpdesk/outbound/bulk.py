"""Sending a campaign: batch jobs that claim, re-check, render, pace and hand off, once.

Each lane (a ``send_batches`` job) sends one batch after another: it claims pending
deliveries (:mod:`helpdesk.outbound.bulk_claims`), renders them
(:mod:`helpdesk.outbound.personalise`), then hands them off in rounds paced by the rate
limiter (:mod:`helpdesk.outbound.bulk_handoff`). ``maintain`` fires due campaigns,
recovers abandoned claims, restarts stalled lanes and closes finished campaigns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.jobs import enqueue, job, periodic
from helpdesk.models.audience import MailingList, Subscriber
from helpdesk.models.campaigns import Campaign, CampaignStatus, Delivery, DeliveryStatus
from helpdesk.outbound import ratelimit
from helpdesk.outbound.bulk_claims import (
    CLAIMED,
    HANDING,
    claim,
    expire_leases,
    lease,
    release,
    settle_left_behind,
)
from helpdesk.outbound.bulk_handoff import record, send_chunk, start_hand_off
from helpdesk.outbound.personalise import CampaignInfo, Group, render_rows
from helpdesk.outbound.templates import Sources

# A batch job sends for this long, then hands over to a fresh job (workers stay fair).
RUN_SECONDS = 60
LANE_TTL = 15


# -- lanes: the jobs sending a campaign -------------------------------------------------------


def _lane_key(campaign_id: int, lane: int) -> str:
    return f"helpdesk:campaign-lane:{campaign_id}:{lane}"


def _redis():
    if not current_app.config.get("HELPDESK_REDIS_URL"):
        return None
    from helpdesk.jobs import redis_connection

    return redis_connection()


def start_lanes(campaign_id: int) -> None:
    """Queue the campaign's batch jobs for after the current transaction commits."""
    for lane in range(current_app.config["HELPDESK_CAMPAIGN_JOBS"]):
        enqueue(send_batches, campaign_id, lane)


def _ensure_lanes(campaign_id: int) -> int:
    """Queue the lanes that no live job is running (those whose heartbeat expired)."""
    redis = _redis()
    started = 0
    for lane in range(current_app.config["HELPDESK_CAMPAIGN_JOBS"]):
        if redis is None or redis.set(_lane_key(campaign_id, lane), "queued", nx=True, ex=LANE_TTL):
            enqueue(send_batches, campaign_id, lane)
            started += 1
    return started


def _heartbeat(campaign_id: int, lane: int) -> None:
    redis = _redis()
    if redis is not None:
        redis.set(_lane_key(campaign_id, lane), "running", ex=LANE_TTL)


@job("mail-bulk", timeout=RUN_SECONDS + 600, retries=0)
def send_batches(campaign_id: int, lane: int = 0) -> int:
    """Send batches of the campaign until none is left, it stops, or time is up."""
    deadline = time.monotonic() + RUN_SECONDS
    sent = 0
    idle = 0
    while time.monotonic() < deadline:
        _heartbeat(campaign_id, lane)
        result = send_one_batch(campaign_id)
        if result is None:
            break
        sent += result.handed_off
        if result.handed_off == 0 and result.retry_later:
            idle += 1
            if idle >= 3:
                break
            time.sleep(min(2.0 * idle, 10.0))
        else:
            idle = 0
    else:
        enqueue(send_batches, campaign_id, lane)
    finish_if_done(campaign_id)
    db.session.commit()
    return sent


# -- one batch --------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What one claim did."""

    claimed: int = 0
    handed_off: int = 0
    retry_later: bool = False


def _load_campaign(campaign_id: int) -> CampaignInfo | None:
    row = db.session.execute(
        sa.select(Campaign, MailingList.name)
        .join(MailingList, MailingList.id == Campaign.list_id)
        .where(Campaign.id == campaign_id)
    ).first()
    if row is None:
        return None
    campaign, list_name = row
    if campaign.html is None or campaign.subject is None:
        return None
    return CampaignInfo(
        campaign.id,
        campaign.list_id,
        list_name,
        campaign.name,
        Sources(campaign.subject, campaign.html, campaign.text or ""),
        campaign.from_addr,
        campaign.reply_to,
    )


def _set(ids: list[int], token: str, **values: Any) -> None:
    if ids:
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.batch == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def send_one_batch(campaign_id: int, size: int | None = None) -> BatchResult | None:
    """Claim, re-check, render, pace and hand off one batch; None when nothing is claimable.

    At a low rate the claim holds a couple of seconds' worth of recipients and is handed
    off in small paced chunks, so the provider sees an even flow; unlimited, the claim
    is one chunk.
    """
    from helpdesk.outbound.backends import get_backend

    pace = ratelimit.current_pace()
    configured = current_app.config["HELPDESK_CAMPAIGN_BATCH_SIZE"]
    chunk = size or ratelimit.bulk_batch_size(configured, pace)
    claim_size = size or ratelimit.bulk_claim_size(configured, pace)
    campaign = _load_campaign(campaign_id)
    if campaign is None:
        return None
    token = claim(campaign_id, claim_size)
    if token is None:
        return None
    rows = db.session.execute(
        sa.select(
            Delivery.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.language,
            Subscriber.attributes,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.batch == token)
        .order_by(Delivery.id)
    ).all()
    result = BatchResult(claimed=len(rows))
    groups, failed = render_rows(campaign, rows)
    for error, ids in failed.items():
        _set(ids, token, status=DeliveryStatus.FAILED, error=error, lease_until=None)
    db.session.commit()
    handing = HANDING + token[len(CLAIMED) :]
    backend = get_backend(current_app.config)
    max_wait = lease().total_seconds() / 3
    for round_ in _rounds(groups, chunk, ratelimit.bulk_round_size(configured, pace)):
        handed = start_hand_off(
            campaign, token, handing, [m[0] for _, members in round_ for m in members]
        )
        if not handed:
            if not _still_sending(campaign_id):
                break
            continue
        outcomes: list[tuple[int, Any, str | None, str | None]] = []
        unsent: list[int] = []
        for group, members in round_:
            members = [m for m in members if m[0] in handed]
            if not members:
                continue
            if result.retry_later or not ratelimit.acquire(len(members), "bulk", max_wait=max_wait):
                result.retry_later = True
                unsent.extend(m[0] for m in members)
                continue
            result.handed_off += len(members)
            outcomes.extend(send_chunk(campaign, group, members, backend))
        record(outcomes, unsent, handing)
        if result.retry_later:
            break
    if result.retry_later:
        release(token)
    settle_left_behind(campaign_id, token)
    db.session.commit()
    return result


def _rounds(groups: list[Group], chunk: int, round_size: int):
    """Chunks of each group, gathered in rounds of about ``round_size`` recipients.

    One round is one committed hand-off step: its chunks are then posted one by one,
    each paced by the limiter, and their outcomes recorded together.
    """
    current: list[tuple[Group, list]] = []
    count = 0
    for group in groups:
        for start in range(0, len(group.members), chunk):
            members = group.members[start : start + chunk]
            current.append((group, members))
            count += len(members)
            if count >= round_size:
                yield current
                current, count = [], 0
    if current:
        yield current


def _still_sending(campaign_id: int) -> bool:
    state = db.session.scalar(sa.select(Campaign.status).where(Campaign.id == campaign_id))
    return state == CampaignStatus.SENDING


# -- recovery ---------------------------------------------------------------------------------


def finish_if_done(campaign_id: int) -> bool:
    """Mark a sending campaign sent once nothing is pending or claimed."""
    busy = sa.exists().where(
        Delivery.campaign_id == campaign_id,
        Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.CLAIMED)),
    )
    return bool(
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING, ~busy)
            .values(status=CampaignStatus.SENT, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
    )


# On the default queue: served before mail-bulk, so batch jobs never hold it up.
@periodic(10)
@job("default", timeout=300, retries=0)
def maintain() -> None:
    """Fire due campaigns, recover abandoned claims, restart stalled sending, close done ones."""
    from helpdesk.outbound.campaigns import fire_due

    fire_due()
    expire_leases()
    sending = db.session.scalars(
        sa.select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
    ).all()
    for campaign_id in sending:
        if not finish_if_done(campaign_id):
            pending = db.session.scalar(
                sa.select(sa.func.count()).where(
                    Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING
                )
            )
            if pending:
                _ensure_lanes(campaign_id)
        db.session.commit()
