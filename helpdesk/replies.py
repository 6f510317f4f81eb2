"""Replying to a ticket's contact: Markdown in, mail out (HTML and text), threaded.

The reply is written to the ticket's thread and queued through the transactional facade
(helpdesk.outbound.transactional.queue_message) in the caller's transaction, so nothing
leaves unless the request commits. It goes out from the committee's address with our
signed Message-ID, In-Reply-To/References pointing at the conversation and the ticket's
tag in the subject, so that the contact's answer comes back to the same ticket.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.utils import formataddr, getaddresses

import sqlalchemy as sa
from markdown_it import MarkdownIt

from helpdesk import addresses, audit, collisions, tickets
from helpdesk.collisions import Snapshot
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.threading import make_message_id, tagged_subject
from helpdesk.models import (
    Committee,
    CommitteeAddress,
    Direction,
    Message,
    OutboundKind,
    Ticket,
    TicketParticipant,
    TicketStatus,
)
from helpdesk.outbound.transactional import display_from, queue_message

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 100_000
MAX_CC = 20
MAX_REFERENCES = 20
_RE = re.compile(r"^\s*(re|aw|sv|antw)\s*:", re.IGNORECASE)
# CommonMark without raw HTML: whatever an agent types, only Markdown becomes markup.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


@dataclass(frozen=True)
class ReplyDefaults:
    """What a new reply form starts with."""

    to: str | None
    cc: list[str]
    subject: str


def render_markdown(source: str) -> str:
    """The HTML of a reply written in Markdown (raw HTML is shown as text, not markup)."""
    return _MARKDOWN.render(source)


def reply_subject(ticket: Ticket) -> str:
    """``Re: <subject>`` with the ticket's tag."""
    subject = ticket.subject or "Your message"
    if not _RE.match(subject):
        subject = f"Re: {subject}"
    return tagged_subject(subject, ticket.number)


def reply_defaults(ticket_id: int) -> ReplyDefaults:
    """The recipient, Cc (the ticket's participants) and subject of a new reply."""
    ticket = tickets.get_ticket(ticket_id)
    to = formataddr((ticket.contact.name, ticket.contact.email)) if ticket.contact else None
    cc = sorted(p.address for p in ticket.participants)
    return ReplyDefaults(to=to, cc=cc, subject=reply_subject(ticket))


def parse_cc(value: str) -> list[str]:
    """Addresses from a Cc field (commas, semicolons or new lines between them)."""
    entries = getaddresses([value.replace(";", ",").replace("\n", ",")])
    found: list[str] = []
    for name, address in entries:
        if not address and not name:
            continue
        if not addresses.is_valid(address):
            raise ServiceError(f"{address or name!r} is not a mail address", field="cc")
        if addresses.normalize(address) not in found:
            found.append(addresses.normalize(address))
    if len(found) > MAX_CC:
        raise ServiceError(f"at most {MAX_CC} addresses in Cc", field="cc")
    return found


def _sender_address(ticket: Ticket, committee: Committee) -> str:
    """The committee address the conversation used, else the committee's first address."""
    own = committee.address_list
    if not own:
        raise ServiceError(f"{committee.name} has no mail address to reply from")
    last_inbound = db.session.scalar(
        sa.select(Message)
        .where(Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)
        .order_by(Message.id.desc())
        .limit(1)
    )
    if last_inbound is not None:
        written_to = {addresses.normalize(a) for a in last_inbound.to_addresses}
        for address in own:
            if address in written_to:
                return address
    return own[0]


def _threading(ticket_id: int) -> tuple[str | None, list[str]]:
    """In-Reply-To (the newest mail we got, else the newest we sent) and References."""
    mails = list(
        db.session.execute(
            sa.select(Message.message_id, Message.direction)
            .where(Message.ticket_id == ticket_id, Message.message_id.is_not(None))
            .order_by(Message.id)
        )
    )
    inbound = [mid for mid, direction in mails if direction is Direction.INBOUND]
    in_reply_to = inbound[-1] if inbound else (mails[-1][0] if mails else None)
    references = [mid for mid, _ in mails][-MAX_REFERENCES:]
    return in_reply_to, references


def send_reply(
    ticket_id: int,
    author_id: int,
    body: str,
    *,
    cc: list[str],
    snapshot: Snapshot | None,
    status: TicketStatus | str | None = TicketStatus.PENDING,
) -> Message:
    """Reply to the ticket's contact and set the ticket's status (pending by default).

    Raises :class:`helpdesk.collisions.Collision` when somebody else changed the ticket
    after ``snapshot``; nothing is written then.
    """
    ticket = tickets.get_ticket(ticket_id)
    body = body.strip()
    if not body:
        raise ServiceError("a reply needs some text", field="body")
    if len(body) > MAX_BODY_CHARS:
        raise ServiceError(f"a reply has at most {MAX_BODY_CHARS} characters", field="body")
    contact = ticket.contact
    if contact is None:
        raise ServiceError(
            "This ticket has no verified contact to reply to; add a note instead.", field="body"
        )
    committee = db.session.get(Committee, ticket.committee_id)
    sender = _sender_address(ticket, committee)
    ours = set(db.session.scalars(sa.select(CommitteeAddress.address)))
    cc = [a for a in cc if a != contact.email_key and a not in ours]
    status = TicketStatus(status) if status else None

    collisions.claim(ticket_id, snapshot, user_id=author_id)

    html = render_markdown(body)
    in_reply_to, references = _threading(ticket_id)
    message_id = make_message_id(ticket.number)
    subject = reply_subject(ticket)
    thread_message = tickets.add_message(
        ticket_id,
        Direction.OUTBOUND,
        text=body,
        html=html,
        subject=subject,
        from_address=sender,
        from_name=committee.name,
        to_addresses=[contact.email],
        cc_addresses=cc,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(references) or None,
        author_id=author_id,
        reopen=False,
    )
    headers = {}
    if in_reply_to:
        headers["In-Reply-To"] = f"<{in_reply_to}>"
        headers["References"] = " ".join(f"<{r}>" for r in references)
    queue_message(
        OutboundKind.REPLY,
        from_addr=display_from(committee.name, sender),
        to=[formataddr((contact.name, contact.email))],
        cc=cc,
        subject=subject,
        text=body,
        html=html,
        headers=headers,
        message_id=message_id,
        ticket_id=ticket_id,
        thread_message_id=thread_message.id,
    )
    known = {p.address for p in ticket.participants}
    for address in cc:
        if address not in known:
            ticket.participants.append(TicketParticipant(address=address))
    audit.record(
        "ticket.replied", actor_id=author_id, ticket_id=ticket_id, message_id=thread_message.id
    )
    if ticket.assignee_id is None:
        tickets.assign(ticket_id, author_id, actor_id=author_id)
    if status is not None:
        tickets.set_status(ticket_id, status, actor_id=author_id)
    db.session.flush()
    log.info("reply %s queued on ticket %s", message_id, ticket.number)
    return thread_message
