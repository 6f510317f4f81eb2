"""Acknowledging new tickets: one mail per new ticket, never to machines, rate-limited."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app

from helpdesk import addresses, tickets
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.inbound.directory import directory
from helpdesk.inbound.threading import make_message_id, subject_tag, tagged_subject
from helpdesk.models import (
    Committee,
    Direction,
    OutboundKind,
    OutboundMessage,
    Ticket,
)
from helpdesk.outbound.render import default_template, render_string
from helpdesk.outbound.transactional import display_from, is_suppressed, queue_message

if TYPE_CHECKING:
    from helpdesk.inbound.facts import MailFacts

log = logging.getLogger(__name__)

_NO_REPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|donotreply|mailer-daemon|postmaster|bounces?|notifications?)"
    r"([+.-].*)?$",
    re.IGNORECASE,
)


def should_acknowledge(facts: MailFacts, committee: Committee) -> str | None:
    """None when the sender gets an acknowledgement, else the reason they do not."""
    from helpdesk.inbound.classify import MailKind

    if not committee.acknowledge:
        return "acknowledgements are off for this committee"
    if facts.classification.kind is not MailKind.PERSONAL:
        return f"{facts.classification.kind.value} mail"
    address = facts.sender_address
    if not address or not addresses.is_valid(address):
        return "no verified sender"
    if not address.isascii():
        return "an internationalised address (our mail backends send ASCII addresses only)"
    local = addresses.normalize(address).partition("@")[0]
    if _NO_REPLY.match(local):
        return "a no-reply address"
    if addresses.normalize(address) in directory().committee_by_address:
        return "one of our own addresses"
    if is_suppressed(address):
        return "a suppressed address"
    since = utcnow() - timedelta(minutes=current_app.config["HELPDESK_ACK_INTERVAL_MINUTES"])
    recent = db.session.scalar(
        sa.select(OutboundMessage.id).where(
            OutboundMessage.kind == OutboundKind.ACKNOWLEDGEMENT,
            OutboundMessage.to_key == addresses.normalize(address),
            OutboundMessage.created_at >= since,
        )
    )
    if recent is not None:
        return "acknowledged recently"
    return None


def acknowledge(ticket: Ticket, facts: MailFacts) -> OutboundMessage | None:
    """Queue the acknowledgement of a new ticket, in the ticket's own transaction."""
    committee = db.session.get(Committee, ticket.committee_id)
    reason = should_acknowledge(facts, committee)
    if reason is not None:
        log.debug("ticket %s not acknowledged: %s", ticket.number, reason)
        return None
    context = {
        "ticket_number": ticket.number,
        "ticket_subject": ticket.subject,
        "committee_name": committee.name,
        "contact_name": facts.sender.name,
        "subject_tag": subject_tag(),
    }
    subject = render_string(committee.ack_subject or "{{ ticket_subject }}", context).strip()
    text = render_string(committee.ack_text or default_template("acknowledgement.txt"), context)
    sender = committee.address_list[0] if committee.address_list else None
    if sender is None:
        return None
    message_id = make_message_id(ticket.number)
    references = [*facts.mail.references, facts.mail.message_id] if facts.mail.message_id else []
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    if facts.mail.message_id:
        headers["In-Reply-To"] = f"<{facts.mail.message_id}>"
        headers["References"] = " ".join(f"<{r}>" for r in references[-20:])
    if not subject:
        subject = "Your message"
    elif not subject.lower().startswith(("re:", "aw:")):
        subject = f"Re: {subject}"
    subject = tagged_subject(subject, ticket.number)
    from_addr = display_from(committee.name, sender)
    thread_message = tickets.add_message(
        ticket.id,
        Direction.OUTBOUND,
        text=text,
        subject=subject,
        from_address=sender,
        from_name=committee.name,
        to_addresses=[facts.sender_address],
        message_id=message_id,
        in_reply_to=facts.mail.message_id,
        reopen=False,
    )
    return queue_message(
        OutboundKind.ACKNOWLEDGEMENT,
        from_addr=from_addr,
        to=[display_from(facts.sender.name, facts.sender_address)],
        subject=subject,
        text=text,
        headers=headers,
        message_id=message_id,
        ticket_id=ticket.id,
        thread_message_id=thread_message.id,
    )
