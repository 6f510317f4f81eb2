"""Writing what the pipeline decided: tickets and messages with their attachments."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from helpdesk import addresses, contacts, tickets
from helpdesk.errors import ServiceError
from helpdesk.inbound.directory import directory
from helpdesk.models import (
    Attachment,
    Direction,
    Message,
    Ticket,
    TicketParticipant,
)
from helpdesk.models.committees import Visibility
from helpdesk.storage import attachment_store

if TYPE_CHECKING:
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
    return ticket, store_message(ticket, facts, raw_mail_id, reopen=False, new_ticket=True)


def store_message(
    ticket: Ticket, facts: MailFacts, raw_mail_id: int, *, reopen: bool, new_ticket: bool = False
) -> Message:
    """Add the mail to a ticket's thread with its attachments and new participants
    (``new_ticket``: the ticket was opened in this transaction)."""
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
        touch_ticket=not new_ticket,
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
    # Attachments and participants go with the next flush: nothing reads their ids here.
    _add_participants(ticket, facts)
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
    # Read in this transaction, not from the directory's copy: a committee made private a
    # moment ago must not take strangers in. (A ticket opened in this transaction already
    # holds the row.)
    if ticket.committee.visibility != Visibility.OPEN:
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
