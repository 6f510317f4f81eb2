"""Match a mail to the ticket it continues.

Our outgoing Message-IDs carry an HMAC-signed token naming the ticket, so a reply that
quotes one in In-Reply-To or References finds its ticket without trusting anything the
sender wrote. Failing that, Message-IDs we stored (theirs and ours) are looked up. A
subject tag like ``[PyConDE #1234]`` alone is weaker: anybody can type it, so it attaches
a mail only when the sender already takes part in that ticket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.merging import final_ticket
from helpdesk.models import Message, OutboundMessage, Ticket, TicketParticipant
from helpdesk.models.tickets import OPEN_STATUSES

_TOKEN = re.compile(
    r"^(?P<nonce>[a-z0-9]{12})\.(?P<ticket>t\d+|x)\.(?P<sig>[a-z0-9]{16})@(?P<domain>.+)$"
)


def _domain() -> str:
    return urlsplit(current_app.config["HELPDESK_BASE_URL"]).hostname or "localhost"


def _signature(payload: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, b"helpdesk.message-id:" + payload.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def make_message_id(ticket_number: int | None = None) -> str:
    """A new Message-ID (without angle brackets) carrying a signed token for the ticket."""
    nonce = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:12]
    ticket = f"t{ticket_number}" if ticket_number is not None else "x"
    return f"{nonce}.{ticket}.{_signature(f'{nonce}.{ticket}')}@{_domain()}"


def _verified_token(message_id: str) -> str | None:
    match = _TOKEN.match(message_id.strip().strip("<>").lower())
    if not match or match["domain"] != _domain().lower():
        return None
    expected = _signature(f"{match['nonce']}.{match['ticket']}")
    return match["ticket"] if hmac.compare_digest(expected, match["sig"]) else None


def is_own_message_id(message_id: str) -> bool:
    """Whether ``message_id`` is one we generated (its signature verifies)."""
    return _verified_token(message_id) is not None


def ticket_number_from_message_id(message_id: str) -> int | None:
    """The ticket number a signed Message-ID of ours names, or None."""
    token = _verified_token(message_id)
    return int(token[1:]) if token and token.startswith("t") else None


def subject_tag() -> str:
    """The tag prefix of outgoing subjects, e.g. ``PyConDE`` in ``[PyConDE #1234]``."""
    return current_app.config["HELPDESK_SUBJECT_TAG"]


def tagged_subject(subject: str, number: int) -> str:
    """``subject`` with our ticket tag, added once."""
    if ticket_number_from_subject(subject) == number:
        return subject
    return f"[{subject_tag()} #{number}] {subject}".strip()


def ticket_number_from_subject(subject: str) -> int | None:
    """The number in our subject tag, if the subject carries one."""
    pattern = rf"\[\s*{re.escape(subject_tag())}\s*#(\d{{1,12}})\s*\]"
    match = re.search(pattern, subject, re.IGNORECASE)
    return int(match.group(1)) if match else None


@dataclass
class ThreadMatch:
    """The tickets a mail continues, and a ticket it only named (for a stranger's mail)."""

    tickets: list[Ticket] = field(default_factory=list)
    how: dict[int, str] = field(default_factory=dict)  # ticket id -> token | message-id | subject
    referenced_number: int | None = None


def find_thread(
    *, in_reply_to: list[str], references: list[str], subject: str, sender: str | None
) -> ThreadMatch:
    """Find the tickets a mail continues.

    ``sender`` is the verified sender address (None when unverified): a subject tag is
    honoured only for the ticket's contact or an existing participant.
    """
    result = ThreadMatch()

    def add(ticket: Ticket | None, how: str) -> None:
        if ticket is not None:
            # A merged ticket's conversation goes on on the ticket it was merged into.
            ticket = final_ticket(ticket)
        if ticket is not None and ticket.id not in result.how:
            result.tickets.append(ticket)
            result.how[ticket.id] = how

    ids = [i.strip().strip("<>") for i in [*in_reply_to, *reversed(references)] if i.strip()]
    for message_id in ids:
        number = ticket_number_from_message_id(message_id)
        if number is not None:
            add(db.session.scalar(sa.select(Ticket).where(Ticket.number == number)), "token")
    if ids and not result.tickets:
        known = sa.union(
            sa.select(Message.ticket_id).where(Message.message_id.in_(ids)),
            sa.select(OutboundMessage.ticket_id).where(
                OutboundMessage.message_id.in_(ids), OutboundMessage.ticket_id.is_not(None)
            ),
        ).subquery()
        for ticket in db.session.scalars(
            sa.select(Ticket).where(Ticket.id.in_(sa.select(known.c[0]))).order_by(Ticket.id)
        ):
            add(ticket, "message-id")
    if not result.tickets:
        number = ticket_number_from_subject(subject)
        if number is not None:
            ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
            if ticket is not None and sender and _takes_part(ticket, sender):
                add(ticket, "subject")
            else:
                result.referenced_number = number
    return result


def _takes_part(ticket: Ticket, sender: str) -> bool:
    key = addresses.normalize(sender)
    if ticket.contact is not None and ticket.contact.email_key == key:
        return True
    return db.session.get(TicketParticipant, {"ticket_id": ticket.id, "address": key}) is not None


def continues_in_place(ticket: Ticket) -> bool:
    """Whether a new mail belongs on ``ticket`` itself rather than on a new, linked ticket.

    Open tickets always take the mail; a solved or closed one is reopened unless it was
    closed longer ago than HELPDESK_REOPEN_DAYS.
    """
    if ticket.status in OPEN_STATUSES or ticket.closed_at is None:
        return True
    days = current_app.config["HELPDESK_REOPEN_DAYS"]
    return utcnow() - ticket.closed_at <= timedelta(days=days)
