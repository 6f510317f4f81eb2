"""Transactional mail (acknowledgements, replies, notifications): queue, then deliver once.

The OutboundMessage row is written in the caller's transaction; the delivery job is queued
only when that transaction commits. Delivery claims the row (queued -> sending) in its own
committed step before anything leaves, so a worker that dies mid-hand-off leaves a
``sending`` row that the sweeper turns into ``uncertain`` instead of sending it again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.inbound.classify import origin_token
from helpdesk.inbound.rules import ORIGIN_HEADER
from helpdesk.jobs import enqueue, job, periodic
from helpdesk.models import (
    OutboundKind,
    OutboundMessage,
    OutboundStatus,
    Suppression,
    SuppressionReason,
)
from helpdesk.outbound import ratelimit
from helpdesk.storage import attachment_store

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 6
# Transactional mail ignores list unsubscribes, never hard bounces or complaints.
BLOCKING_REASONS = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)


# Statements of the busy paths are built once (building one costs more than running it)
# on the table itself: no ORM object to create, track, flush or refresh after a commit.
_table = OutboundMessage.__table__


@cache
def _insert_statement() -> sa.Insert:
    return _table.insert().returning(_table.c.id)


class TemporaryDeliveryError(Exception):
    """The backend could not take the mail now; RQ retries the job."""


def message_columns(
    kind: OutboundKind | str,
    *,
    from_addr: str,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str,
    ticket_id: int | None = None,
    thread_message_id: int | None = None,
    attachments: list[dict] | None = None,
    api_user_id: int | None = None,
) -> dict[str, Any]:
    """The columns of a transactional mail waiting for delivery."""
    if not to:
        raise ValueError("a mail needs at least one recipient")
    return {
        "kind": OutboundKind(kind),
        "status": OutboundStatus.QUEUED,
        "from_addr": from_addr,
        "to": list(to),
        "cc": list(cc or []),
        "bcc": list(bcc or []),
        "to_key": addresses.normalize(parseaddr(to[0])[1]),
        "reply_to": reply_to,
        "subject": subject,
        "text": text,
        "html": html,
        "headers": dict(headers or {}),
        "message_id": message_id,
        "ticket_id": ticket_id,
        "thread_message_id": thread_message_id,
        "attachments": list(attachments or []),
        "api_user_id": api_user_id,
    }


def queue_message(kind: OutboundKind | str, **fields: Any) -> OutboundMessage:
    """Write a transactional mail (``fields`` as for :func:`message_columns`) and queue its
    delivery for after the commit."""
    row = OutboundMessage(**message_columns(kind, **fields))
    db.session.add(row)
    db.session.flush()
    enqueue(deliver, row.id)
    return row


def queue_message_columns(columns: dict[str, Any]) -> int:
    """Write a mail from :func:`message_columns` and queue its delivery; return its id.

    For a busy path that needs only the id (the transactional API): one prebuilt INSERT
    instead of an ORM object and a flush of the unit of work.
    """
    outbound_id = db.session.execute(_insert_statement(), columns).scalar_one()
    enqueue(deliver, outbound_id)
    return outbound_id


def is_suppressed(address: str, reasons=BLOCKING_REASONS) -> bool:
    """Whether ``address`` is on the suppression list for one of ``reasons``."""
    return bool(db.session.scalar(sa.select(suppressed(address, reasons))))


def suppressed(address: str | sa.BindParameter, reasons=BLOCKING_REASONS) -> sa.Exists:
    """SQL: ``address`` is on the suppression list for one of ``reasons`` (to ask in one
    statement with other questions). A bound parameter stands for a normalised address,
    for statements built once."""
    if isinstance(address, str):
        address = addresses.normalize(parseaddr(address)[1] or address)
    return sa.exists().where(Suppression.address_key == address, Suppression.reason.in_(reasons))


# Delivery reads the row in the same statement that claims it.


@cache
def _claim_statement() -> sa.Update:
    return (
        _table.update()
        .where(_table.c.id == sa.bindparam("outbound_id"), _table.c.status == OutboundStatus.QUEUED)
        .values(
            status=OutboundStatus.SENDING,
            lease_until=sa.bindparam("lease"),
            attempts=_table.c.attempts + 1,
        )
        .returning(*_table.c)
    )


@cache
def _outcome_statement() -> sa.Update:
    # The SET clause comes from the parameters' names.
    return _table.update().where(_table.c.id == sa.bindparam("outbound_id"))


@cache
def _suppressed_statement() -> sa.Select:
    return (
        sa.select(Suppression.id)
        .where(
            Suppression.address_key.in_(sa.bindparam("keys", expanding=True)),
            Suppression.reason.in_(BLOCKING_REASONS),
        )
        .limit(1)
    )


def _claim(outbound_id: int) -> sa.Row | None:
    """queued -> sending with a lease, returning the row; None if it is not queued."""
    return db.session.execute(
        _claim_statement(), {"outbound_id": outbound_id, "lease": utcnow() + LEASE}
    ).first()


def _any_suppressed(recipients: list[str]) -> bool:
    keys = [addresses.normalize(parseaddr(r)[1] or r) for r in recipients]
    return db.session.execute(_suppressed_statement(), {"keys": keys}).first() is not None


def _set_outcome(
    outbound_id: int,
    status: OutboundStatus,
    error: str | None,
    provider_id: str | None = None,
    sent_at: datetime | None = None,
) -> None:
    db.session.execute(
        _outcome_statement(),
        {
            "outbound_id": outbound_id,
            "status": status,
            "error": error,
            "provider_id": provider_id,
            "sent_at": sent_at,
            "lease_until": None,
        },
    )


def _batch(row: sa.Row):
    from helpdesk.outbound.backends import OutgoingAttachment, OutgoingBatch, Recipient

    store = attachment_store()
    headers = dict(row.headers)
    headers["Message-ID"] = f"<{row.message_id}>"
    # Lets the ingester recognise our own mail when a Group sends it back to us.
    headers[ORIGIN_HEADER] = origin_token(current_app.config["HELPDESK_BASE_URL"])
    return OutgoingBatch(
        from_addr=row.from_addr,
        subject=row.subject,
        text=row.text,
        html=row.html,
        reply_to=row.reply_to,
        headers=headers,
        attachments=[
            OutgoingAttachment(a["filename"], a["content_type"], store.get(a["sha256"]))
            for a in row.attachments
        ],
        recipients=[
            Recipient(
                to=list(row.to),
                cc=list(row.cc),
                bcc=list(row.bcc),
                custom_args={"outbound_message_id": str(row.id)},
            )
        ],
        categories=[row.kind.value],
    )


@job(
    "mail-transactional",
    timeout=120,
    retries=MAX_ATTEMPTS - 1,
    retry_intervals=(15, 60, 300, 900, 3600),
)
def deliver(outbound_id: int) -> None:
    """Hand one transactional mail to the mail backend, once."""
    from helpdesk.outbound.backends import Outcome, get_backend

    row = _claim(outbound_id)
    if row is None:
        db.session.commit()
        return  # already delivered, given up on, or being handled by another worker
    if _any_suppressed(row.to):
        _set_outcome(
            outbound_id,
            OutboundStatus.SUPPRESSED,
            "the recipient is suppressed (hard bounce or complaint)",
        )
        db.session.commit()
        log.info("outbound %s suppressed", outbound_id)
        return
    # The claim is committed before anything leaves: a worker that dies from here on
    # leaves a "sending" row for the sweeper, never a second copy.
    db.session.commit()
    log.debug(
        "delivering outbound %s to %d recipient(s)",
        outbound_id,
        len(row.to) + len(row.cc) + len(row.bcc),
    )
    ratelimit.transactional_slot()
    result = get_backend(current_app.config).send(_batch(row))[0]
    if result.outcome == Outcome.ACCEPTED:
        _set_outcome(outbound_id, OutboundStatus.SENT, None, result.provider_id, utcnow())
    elif result.outcome == Outcome.UNCERTAIN:
        _set_outcome(outbound_id, OutboundStatus.UNCERTAIN, result.error)
    elif result.outcome == Outcome.PERMANENT or row.attempts >= MAX_ATTEMPTS:
        _set_outcome(outbound_id, OutboundStatus.FAILED, result.error)
    else:
        _set_outcome(outbound_id, OutboundStatus.QUEUED, result.error)
        db.session.commit()
        raise TemporaryDeliveryError(f"outbound {outbound_id}: {result.error}")
    db.session.commit()


@job("mail-transactional", timeout=120, retries=0)
def sweep_stale_sending() -> int:
    """Mark mail whose worker vanished mid-hand-off as uncertain (never resend it blindly)."""
    stale = db.session.execute(
        sa.update(OutboundMessage)
        .where(
            OutboundMessage.status == OutboundStatus.SENDING,
            OutboundMessage.lease_until < utcnow(),
        )
        .values(
            status=OutboundStatus.UNCERTAIN,
            error="the worker stopped during the hand-off; check before resending",
        )
    ).rowcount
    db.session.commit()
    if stale:
        log.warning("%d transactional mail(s) marked uncertain", stale)
    return stale


def requeue_unsent(older_than: timedelta = timedelta(minutes=5)) -> int:
    """Queue delivery again for rows still queued (a process died between its commit and
    the delivery job, or Redis was down at commit time).

    Safe to run at any time: delivery claims a row atomically, so a row whose first job
    is still on its way is delivered once whichever job comes first.
    """
    ids = list(
        db.session.scalars(
            sa.select(OutboundMessage.id).where(
                OutboundMessage.status == OutboundStatus.QUEUED,
                OutboundMessage.created_at <= utcnow() - older_than,
            )
        )
    )
    for outbound_id in ids:
        enqueue(deliver, outbound_id, job_id=f"deliver-{outbound_id}")
    db.session.commit()
    return len(ids)


@periodic(60)
@job("mail-transactional", timeout=300, retries=0)
def maintain() -> None:
    """Recover transactional mail: requeue rows left queued, flag abandoned hand-offs."""
    requeue_unsent()
    sweep_stale_sending()


def display_from(name: str, address: str) -> str:
    """A From header value for a committee's address."""
    return formataddr((name, address))
