"""Ticket lists and counts, always within what the agent may see (helpdesk.access)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from helpdesk import access
from helpdesk.extensions import db
from helpdesk.models import Committee, Contact, Message, Ticket, TicketStatus, TicketTag
from helpdesk.models.tickets import OPEN_STATUSES

PAGE_SIZE = 50


@dataclass
class TicketPage:
    """One page of a ticket list and the cursor of the next one."""

    tickets: list[Ticket]
    next_cursor: str | None


def status_counts(user) -> dict[int, dict[str, int]]:
    """Per readable committee id, the number of tickets in each status."""
    visible = access.visible_tickets(user).subquery()
    rows = db.session.execute(
        sa.select(visible.c.committee_id, visible.c.status, sa.func.count()).group_by(
            visible.c.committee_id, visible.c.status
        )
    )
    counts: dict[int, dict[str, int]] = {}
    for committee_id, status, n in rows:
        counts.setdefault(committee_id, {})[TicketStatus(status).value] = n
    return counts


def _encode_cursor(ticket: Ticket) -> str:
    payload = json.dumps([ticket.updated_at.isoformat(), ticket.id]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, ticket_id = json.loads(raw)
        return datetime.fromisoformat(stamp), int(ticket_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def list_tickets(
    user,
    *,
    committee_id: int | None = None,
    statuses: tuple[TicketStatus, ...] | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    tag: str | None = None,
    query: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> TicketPage:
    """Tickets ``user`` may see, most recently updated first, one keyset page at a time."""
    stmt = access.visible_tickets(user)
    if committee_id is not None:
        stmt = stmt.where(Ticket.committee_id == committee_id)
    if statuses:
        stmt = stmt.where(Ticket.status.in_(statuses))
    if assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    if unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    if tag:
        stmt = stmt.where(
            sa.exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == tag.lower())
        )
    if query:
        stmt = stmt.where(_matches(query))
    if cursor:
        position = _decode_cursor(cursor)
        if position is not None:
            stamp, ticket_id = position
            stmt = stmt.where(sa.tuple_(Ticket.updated_at, Ticket.id) < sa.tuple_(stamp, ticket_id))
    stmt = stmt.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit + 1)
    tickets = list(db.session.scalars(stmt))
    next_cursor = _encode_cursor(tickets[limit - 1]) if len(tickets) > limit else None
    return TicketPage(tickets[:limit], next_cursor)


def _matches(query: str) -> sa.ColumnElement[bool]:
    """Each word must occur in the subject, a message body or the contact's address/name."""
    conditions = []
    for word in query.split()[:10]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                Ticket.subject.ilike(pattern, escape="\\"),
                sa.exists().where(
                    Message.ticket_id == Ticket.id, Message.text.ilike(pattern, escape="\\")
                ),
                sa.exists().where(
                    Contact.id == Ticket.contact_id,
                    sa.or_(
                        Contact.email.ilike(pattern, escape="\\"),
                        Contact.name.ilike(pattern, escape="\\"),
                    ),
                ),
            )
        )
    return sa.and_(*conditions)


def open_statuses() -> tuple[TicketStatus, ...]:
    """Statuses that still need work."""
    return OPEN_STATUSES


def committee_by_slug(user, slug: str) -> Committee | None:
    """The committee ``slug`` if ``user`` may open its queue."""
    return db.session.scalar(access.readable_committees(user).where(Committee.slug == slug))
