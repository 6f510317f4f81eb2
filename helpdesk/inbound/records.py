"""Writing what the pipeline decided: tickets and messages with their attachments.

Written with helpdesk.ticket_rows' prebuilt statements rather than ORM objects: a
fetched batch opens many tickets, and a flush per row would cost more than the INSERTs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from helpdesk import addresses, contacts, ticket_rows, tickets
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.directory import directory
from helpdesk.models import Attachment, Direction, Ticket, TicketParticipant
from helpdesk.models.committees import Visibility
from helpdesk.storage import attachment_store
from helpdesk.ticket_rows import OpenedTicket

if TYPE_CHECKING:
    from helpdesk.inbound.facts import MailFacts

log = logging.getLogger(__name__)


def open_ticket(committee_id: int, facts: MailFacts, raw_mail_id: int) -> tuple[OpenedTicket, int]:
    """Open a ticket for a new mail in a committee's queue; returns it and the id of the
    mail's message."""
    contact = None
    if facts.sender.verified:
        try:
            contact = contacts.contact_row(facts.sender.address, facts.sender.name)
        except ServiceError:
            log.info(
                "sender %r is not a usable address; ticket without contact", facts.sender.address
            )
    route = facts.route
    decided_here = route is not None and committee_id in route.committee_ids
    ticket = ticket_rows.open_ticket(
        committee_id,
        facts.mail.subject or "(no subject)",
        contact=contact,
        priority=(route.priority if decided_here and route.priority else "normal"),
        tags=route.tags if decided_here else (),
    )
    return ticket, store_message(ticket, facts, raw_mail_id, reopen=False)


def store_message(
    ticket: Ticket | OpenedTicket, facts: MailFacts, raw_mail_id: int, *, reopen: bool
) -> int:
    """Add the mail to a ticket's thread with its attachments and new participants;
    returns the message's id. ``ticket`` is an existing ticket, or one opened in this
    transaction (nobody can have seen it yet: it is neither touched nor reopened)."""
    mail = facts.mail
    sender = facts.sender
    message_id = ticket_rows.insert_message(
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
        classification=facts.classification.kind.value,
        sender_verified=sender.verified,
        claimed_sender=None if sender.verified else _claim(sender),
    )
    if isinstance(ticket, Ticket):
        tickets.message_arrived(ticket, Direction.INBOUND, reopen=reopen)
    store = attachment_store()
    rows = []
    for part in mail.attachments:
        sha256 = store.put(part.data)
        rows.append(
            {
                "message_id": message_id,
                "sha256": sha256,
                "filename": part.filename[:255],
                "content_type": part.content_type[:255],
                "size": len(part.data),
                "storage_key": store.key_for(sha256),
                "content_id": part.content_id[:998] if part.content_id else None,
                "inline": part.inline,
            }
        )
    ticket_rows.insert_rows(Attachment.__table__, rows)
    if mail.oversized:
        ticket_rows.insert_message(
            ticket.id,
            Direction.NOTE,
            text=(
                f"This mail is {len(facts.raw) / 1e6:.1f} MB, over the size limit: its "
                "attachments were not extracted. The raw mail is kept and can be downloaded."
            ),
        )
    _add_participants(ticket, facts)
    return message_id


def _claim(sender) -> str | None:
    if not sender.claimed_address:
        return None
    name = sender.claimed_name or ""
    return f"{name} <{sender.claimed_address}>"[:500] if name else sender.claimed_address[:500]


def _add_participants(ticket: Ticket | OpenedTicket, facts: MailFacts) -> None:
    """Cc'd people join an open committee's ticket; never a members-only or private one."""
    if not facts.sender.verified:
        return
    # Read in this transaction, not from the directory's copy: a committee made private a
    # moment ago must not take strangers in.
    if ticket_rows.committee_visibility(ticket.committee_id) != Visibility.OPEN:
        return
    ours = directory().committee_by_address
    if isinstance(ticket, Ticket):
        existing = {p.address for p in ticket.participants}
        contact_key = ticket.contact.email_key if ticket.contact else None
    else:
        existing = set()
        contact_key = addresses.normalize(ticket.contact_email) if ticket.contact_email else None
    rows = []
    for entry in [*facts.mail.to, *facts.mail.cc]:
        key = addresses.normalize(entry.address)
        if key in ours or key in existing or key == contact_key or not addresses.is_valid(key):
            continue
        rows.append({"ticket_id": ticket.id, "address": key, "name": entry.name[:200]})
        existing.add(key)
    ticket_rows.insert_rows(TicketParticipant.__table__, rows)
    if rows and isinstance(ticket, Ticket):
        db.session.expire(ticket, ["participants"])
