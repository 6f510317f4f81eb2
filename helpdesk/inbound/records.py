"""Writing what the pipeline decided: tickets, messages with attachments, bounce and
complaint records (which feed the suppression list)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from helpdesk import addresses, contacts, tickets
from helpdesk.database import utcnow
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.directory import directory
from helpdesk.models import (
    Attachment,
    BounceRecord,
    Committee,
    ComplaintRecord,
    Direction,
    Message,
    OutboundMessage,
    Suppression,
    SuppressionReason,
    Ticket,
    TicketParticipant,
)
from helpdesk.models.committees import Visibility
from helpdesk.storage import attachment_store

if TYPE_CHECKING:
    from helpdesk.inbound.classify import BounceReport, ComplaintReport
    from helpdesk.inbound.facts import MailFacts

log = logging.getLogger(__name__)


def open_ticket(committee_id: int, facts: MailFacts, raw_mail_id: int) -> tuple[Ticket, Message]:
    """Open a ticket for a new mail in a committee's queue."""
    contact = None
    if facts.sender.verified:
        try:
            contact = contacts.get_or_create_contact(facts.sender.address, facts.sender.name)
        except ServiceError:
            log.info(
                "sender %r is not a usable address; ticket without contact", facts.sender.address
            )
    route = facts.route
    decided_here = route is not None and committee_id in route.committee_ids
    ticket = tickets.create_ticket(
        committee_id,
        facts.mail.subject or "(no subject)",
        contact_id=contact.id if contact else None,
        priority=(route.priority if decided_here and route.priority else "normal"),
        tags=route.tags if decided_here else (),
    )
    return ticket, store_message(ticket, facts, raw_mail_id, reopen=False)


def store_message(ticket: Ticket, facts: MailFacts, raw_mail_id: int, *, reopen: bool) -> Message:
    """Add the mail to a ticket's thread with its attachments and new participants."""
    mail = facts.mail
    sender = facts.sender
    message = tickets.add_message(
        ticket.id,
        Direction.INBOUND,
        text=facts.text,
        html=facts.html,
        subject=mail.subject,
        from_address=sender.address
        if sender.verified
        else (mail.from_.address if mail.from_ else None),
        from_name=(sender.name if sender.verified else (mail.from_.name if mail.from_ else ""))[
            :200
        ],
        to_addresses=[a.address for a in mail.to][:100],
        cc_addresses=[a.address for a in mail.cc][:100],
        reply_to=mail.reply_to[0].address[:320] if mail.reply_to else None,
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to[0] if mail.in_reply_to else None,
        references=" ".join(mail.references)[:100000] or None,
        raw_mail_id=raw_mail_id,
        reopen=reopen,
        classification=facts.classification.kind.value,
        sender_verified=sender.verified,
        claimed_sender=None if sender.verified else _claim(sender),
    )
    store = attachment_store()
    for part in mail.attachments:
        sha256 = store.put(part.data)
        message.attachments.append(
            Attachment(
                sha256=sha256,
                filename=part.filename[:255],
                content_type=part.content_type[:255],
                size=len(part.data),
                storage_key=store.key_for(sha256),
                content_id=part.content_id[:998] if part.content_id else None,
                inline=part.inline,
            )
        )
    if mail.oversized:
        tickets.add_message(
            ticket.id,
            Direction.NOTE,
            text=(
                f"This mail is {len(facts.raw) / 1e6:.1f} MB, over the size limit: its "
                "attachments were not extracted. The raw mail is kept and can be downloaded."
            ),
            reopen=False,
        )
    _add_participants(ticket, facts)
    db.session.flush()
    return message


def _claim(sender) -> str | None:
    if not sender.claimed_address:
        return None
    name = sender.claimed_name or ""
    return f"{name} <{sender.claimed_address}>"[:500] if name else sender.claimed_address[:500]


def _add_participants(ticket: Ticket, facts: MailFacts) -> None:
    """Cc'd people join an open committee's ticket; never a members-only or private one."""
    if not facts.sender.verified:
        return
    # Read now, not from the directory's copy: a committee made private a moment ago must
    # not take strangers in.
    visibility = db.session.scalar(
        sa.select(Committee.visibility).where(Committee.id == ticket.committee_id)
    )
    if visibility != Visibility.OPEN:
        return
    ours = directory().committee_by_address
    existing = {p.address for p in ticket.participants}
    contact_key = ticket.contact.email_key if ticket.contact else None
    for entry in [*facts.mail.to, *facts.mail.cc]:
        key = addresses.normalize(entry.address)
        if key in ours or key in existing or key == contact_key or not addresses.is_valid(key):
            continue
        ticket.participants.append(TicketParticipant(address=key, name=entry.name[:200]))
        existing.add(key)


def _outbound_id(message_id: str | None) -> int | None:
    """The id of the mail we sent with this Message-ID, if we did."""
    if not message_id:
        return None
    table = OutboundMessage.__table__
    return db.session.connection().scalar(
        sa.select(table.c.id).where(table.c.message_id == message_id.strip("<>"))
    )


def _insert_record(table: sa.Table, **values) -> int:
    """Insert a bounce or complaint record as plain Core; returns its id."""
    return db.session.connection().scalar(
        sa.insert(table).values(created_at=utcnow(), **values).returning(table.c.id)
    )


def suppress(address: str, reason: SuppressionReason, source: str) -> None:
    """Put an address on the suppression list (idempotent; the first reason is kept)."""
    key = addresses.normalize(address)
    if not addresses.is_valid(key):
        return
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(Suppression)
        .values(address_key=key, reason=reason, source=source[:255], created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[Suppression.address_key])
    )


def record_bounce(report: BounceReport, raw_mail_id: int) -> int:
    """Keep a bounce, link it to the mail we sent, and suppress hard-bounced addresses;
    returns the bounce record's id."""
    record_id = _insert_record(
        BounceRecord.__table__,
        raw_mail_id=raw_mail_id,
        original_message_id=report.original_message_id,
        outbound_message_id=_outbound_id(report.original_message_id),
        recipients=[
            {
                "address": r.address,
                "status": r.status,
                "action": r.action,
                "diagnostic": (r.diagnostic or "")[:2000],
                "permanent": r.permanent,
            }
            for r in report.recipients
        ],
    )
    for recipient in report.recipients:
        if recipient.permanent:
            suppress(recipient.address, SuppressionReason.HARD_BOUNCE, f"bounce record {record_id}")
    return record_id


def record_complaint(report: ComplaintReport, raw_mail_id: int) -> int:
    """Keep an abuse report and suppress the complaining addresses; returns its id."""
    record_id = _insert_record(
        ComplaintRecord.__table__,
        raw_mail_id=raw_mail_id,
        feedback_type=(report.feedback_type or "abuse")[:64],
        original_message_id=report.original_message_id,
        outbound_message_id=_outbound_id(report.original_message_id),
        recipients=list(report.original_recipients),
    )
    for address in report.original_recipients:
        suppress(address, SuppressionReason.COMPLAINT, f"complaint record {record_id}")
    return record_id
