"""Acknowledging new tickets: one mail per new ticket, never to machines, rate-limited."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app

from helpdesk import addresses, ticket_rows
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.inbound import routing
from helpdesk.inbound.directory import CommitteeInfo, directory
from helpdesk.inbound.threading import make_message_id, subject_tag, tagged_subject
from helpdesk.models import (
    Direction,
    OutboundKind,
    OutboundMessage,
)
from helpdesk.outbound.render import default_template, render_string
from helpdesk.outbound.transactional import (
    display_from,
    message_columns,
    queue_message_columns,
    suppressed,
)

if TYPE_CHECKING:
    from helpdesk.inbound.facts import MailFacts
    from helpdesk.ticket_rows import OpenedTicket

log = logging.getLogger(__name__)

_NO_REPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|donotreply|mailer-daemon|postmaster|bounces?|notifications?)"
    r"([+.-].*)?$",
    re.IGNORECASE,
)


def should_acknowledge(facts: MailFacts, committee: CommitteeInfo) -> str | None:
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
    since = utcnow() - timedelta(minutes=current_app.config["HELPDESK_ACK_INTERVAL_MINUTES"])
    # Suppressions and acknowledgements are written with plain statements at once, so
    # nothing pending in the session needs a flush before this read.
    blocked, acknowledged = (
        db.session.connection()
        .execute(_blocked_or_recent(), {"key": addresses.normalize(address), "since": since})
        .one()
    )
    if blocked:
        return "a suppressed address"
    if acknowledged:
        return "acknowledged recently"
    return None


@cache
def _blocked_or_recent() -> sa.Select:
    """(the address is suppressed, it was acknowledged since then), built once."""
    key = sa.bindparam("key")
    recent = sa.exists().where(
        OutboundMessage.kind == OutboundKind.ACKNOWLEDGEMENT,
        OutboundMessage.to_key == key,
        OutboundMessage.created_at >= sa.bindparam("since"),
    )
    return sa.select(suppressed(key), recent)


@dataclass(frozen=True)
class AcknowledgementPlan:
    """A composed acknowledgement, ready to be written."""

    ticket_id: int
    sender: str
    committee_name: str
    to_address: str
    to_name: str
    subject: str
    text: str
    headers: dict[str, str]
    message_id: str
    in_reply_to: str | None


def plan_acknowledgement(ticket: OpenedTicket, facts: MailFacts) -> AcknowledgementPlan | None:
    """Compose the acknowledgement of a new ticket, or None when it gets none."""
    committee = directory().committees[ticket.committee_id]
    reason = should_acknowledge(facts, committee)
    if reason is not None:
        log.debug("ticket %s not acknowledged: %s", ticket.number, reason)
        return None
    # Answer from the address the mail was sent to, when it was one of the committee's.
    written_to = {routing.strip_plus(r) for r in facts.recipients()}
    sender = next((a for a in committee.addresses if a in written_to), None)
    sender = sender or (committee.addresses[0] if committee.addresses else None)
    if sender is None:
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
    if not subject:
        subject = "Your message"
    elif not subject.lower().startswith(("re:", "aw:")):
        subject = f"Re: {subject}"
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    original = facts.mail.message_id
    if original:
        references = [*facts.mail.references, original][-20:]
        headers["In-Reply-To"] = f"<{original}>"
        headers["References"] = " ".join(f"<{r}>" for r in references)
    return AcknowledgementPlan(
        ticket_id=ticket.id,
        sender=sender,
        committee_name=committee.name,
        to_address=facts.sender_address or "",
        to_name=facts.sender.name,
        subject=tagged_subject(subject, ticket.number),
        text=text,
        headers=headers,
        message_id=make_message_id(ticket.number),
        in_reply_to=original,
    )


def write_acknowledgement(plan: AcknowledgementPlan) -> int:
    """Add the acknowledgement to the thread and queue its delivery (after the commit);
    returns the outbound mail's id. The ticket, opened in this transaction, is not
    touched: nobody can have seen it yet."""
    thread_message_id = ticket_rows.insert_message(
        plan.ticket_id,
        Direction.OUTBOUND,
        text=plan.text,
        subject=plan.subject,
        from_address=plan.sender,
        from_name=plan.committee_name,
        to_addresses=[plan.to_address],
        message_id=plan.message_id,
        in_reply_to=plan.in_reply_to,
    )
    # One prebuilt INSERT: every new ticket is acknowledged, and nothing here needs the row
    # as an object.
    return queue_message_columns(
        message_columns(
            OutboundKind.ACKNOWLEDGEMENT,
            from_addr=display_from(plan.committee_name, plan.sender),
            to=[display_from(plan.to_name, plan.to_address)],
            subject=plan.subject,
            text=plan.text,
            headers=plan.headers,
            message_id=plan.message_id,
            ticket_id=plan.ticket_id,
            thread_message_id=thread_message_id,
        )
    )
