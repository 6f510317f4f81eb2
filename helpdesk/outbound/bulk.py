"""Sending a campaign: batch jobs that claim, re-check, render, pace and hand off, once.

A delivery moves pending -> claimed -> sent (or failed, skipped, uncertain). Its ``batch``
column says how far a claim got, each step committed before the next begins:

* ``c:TOKEN`` claimed, nothing sent. If the worker dies, the lease expires and the
  sweeper returns the row to pending: provably nothing left for it.
* ``h:TOKEN`` handing off: committed just before the request is made. If the worker
  dies now, or the request's answer is lost, nobody knows whether the provider took it:
  the row becomes ``uncertain`` and is never resent automatically (the organiser
  resolves it, or a provider event carrying its delivery id does).

Suppression and subscription are checked in the hand-off UPDATE itself, the committed
step just before the request (later than the claim, so an unsubscribe holds for every
batch not yet handed off; rows that fail it end ``skipped``); pause and cancel are
checked there too, so they take effect within one batch.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.jobs import enqueue, job, periodic
from helpdesk.models.audience import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from helpdesk.models.campaigns import Campaign, CampaignStatus, Delivery, DeliveryStatus
from helpdesk.outbound import ratelimit
from helpdesk.outbound.personalise import (
    CampaignInfo,
    Group,
    backend_batch,
    finish_group,
    render_rows,
)
from helpdesk.outbound.segments import not_suppressed
from helpdesk.outbound.templates import Sources, TemplateProblem

log = logging.getLogger(__name__)

CLAIMED, HANDING = "c:", "h:"
MAX_ATTEMPTS = 8
# A batch job sends for this long, then hands over to a fresh job (workers stay fair).
RUN_SECONDS = 60
LANE_TTL = 15
UNCERTAIN_ERROR = "the worker stopped during the hand-off; the provider may have it"


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


def _lease() -> timedelta:
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
        .values(status=DeliveryStatus.CLAIMED, batch=token, lease_until=utcnow() + _lease())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return token if claimed else None


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
    max_wait = _lease().total_seconds() / 3
    for round_ in _rounds(groups, chunk, ratelimit.bulk_round_size(configured, pace)):
        handed = _start_hand_off(
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
            outcomes.extend(_send_chunk(campaign, group, members, backend))
        _record(outcomes, unsent, handing)
        if result.retry_later:
            break
    if result.retry_later:
        _release(token)
    _settle_left_behind(campaign_id, token)
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


def _start_hand_off(campaign: CampaignInfo, token: str, handing: str, ids: list[int]) -> set[int]:
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
            .values(batch=handing, attempts=Delivery.attempts + 1, lease_until=utcnow() + _lease())
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return handed


def _release(token: str) -> None:
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.batch == token, Delivery.status == DeliveryStatus.CLAIMED)
        .values(status=DeliveryStatus.PENDING, batch=None, lease_until=None)
    )


def _settle_left_behind(campaign_id: int, token: str) -> None:
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


# -- hand-off ---------------------------------------------------------------------------------


def _send_chunk(campaign: CampaignInfo, group: Group, members, backend):
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


def _record(outcomes, unsent: list[int], handing: str) -> None:
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
