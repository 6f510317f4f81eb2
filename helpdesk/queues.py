"""Ticket lists and counts, always within what the agent may see (helpdesk.access).

Lists filter (status, assignee, tag, contact kind, committee, creation dates, full-text
search), sort, and page by keyset: the cursor names the last ticket's sort value and id,
so a page costs the same deep in a long list and rows never repeat or vanish between
pages while tickets change.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from helpdesk import access, search_index
from helpdesk.extensions import db
from helpdesk.models import (
    Committee,
    ContactKind,
    ContactKindName,
    Ticket,
    TicketStatus,
    TicketTag,
)
from helpdesk.models.tickets import OPEN_STATUSES

PAGE_SIZE = 50


class Sort(enum.StrEnum):
    """Orders a ticket list can have."""

    UPDATED = "updated"  # most recent activity first
    UPDATED_ASC = "updated_asc"  # longest waiting first
    CREATED = "created"
    CREATED_ASC = "created_asc"

    @property
    def column(self) -> sa.orm.InstrumentedAttribute:
        """The timestamp the list is ordered by."""
        return Ticket.updated_at if self.value.startswith("updated") else Ticket.created_at

    @property
    def ascending(self) -> bool:
        """Whether the oldest come first."""
        return self.value.endswith("_asc")


@dataclass
class TicketPage:
    """One page of a ticket list and the cursor of the next one."""

    tickets: list[Ticket]
    next_cursor: str | None


def status_counts(
    user, statuses: tuple[TicketStatus, ...] = tuple(TicketStatus)
) -> dict[int, dict[str, int]]:
    """Per readable committee id, the number of tickets in each of ``statuses``."""
    rows = db.session.execute(access.visible_ticket_counts(user, statuses))
    counts: dict[int, dict[str, int]] = {}
    for committee_id, status, n in rows:
        if n:
            counts.setdefault(committee_id, {})[TicketStatus(status).value] = n
    return counts


def _encode_cursor(ticket: Ticket, sort: Sort) -> str:
    stamp = ticket.updated_at if sort.column is Ticket.updated_at else ticket.created_at
    payload = json.dumps([sort.value, stamp.isoformat(), ticket.id]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: Sort) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if len(decoded) == 2:  # cursors from before lists could be sorted
            decoded = [Sort.UPDATED.value, *decoded]
        sort_value, stamp, ticket_id = decoded
        if sort_value != sort.value:
            return None
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment, int(ticket_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def list_tickets(
    user,
    *,
    committee_id: int | None = None,
    statuses: tuple[TicketStatus, ...] | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    tag: str | None = None,
    contact_kind: ContactKindName | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    query: str | None = None,
    sort: Sort = Sort.UPDATED,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> TicketPage:
    """Tickets ``user`` may see, filtered and sorted, one keyset page at a time."""
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
    if contact_kind is not None:
        stmt = stmt.where(
            sa.exists().where(
                ContactKind.contact_id == Ticket.contact_id, ContactKind.kind == contact_kind
            )
        )
    if created_from is not None:
        stmt = stmt.where(Ticket.created_at >= _day_start(created_from))
    if created_to is not None:
        stmt = stmt.where(Ticket.created_at < _day_start(created_to + timedelta(days=1)))
    if query:
        matching = search_index.matching_ticket_ids(query)
        stmt = stmt.where(Ticket.id.in_(matching) if matching is not None else sa.false())
    column = sort.column
    if cursor:
        position = _decode_cursor(cursor, sort)
        if position is not None:
            key = sa.tuple_(column, Ticket.id)
            stmt = stmt.where(key > position if sort.ascending else key < position)
    if sort.ascending:
        stmt = stmt.order_by(column.asc(), Ticket.id.asc())
    else:
        stmt = stmt.order_by(column.desc(), Ticket.id.desc())
    stmt = stmt.limit(limit + 1).options(
        selectinload(Ticket.tag_rows),
        selectinload(Ticket.committee),
        selectinload(Ticket.assignee),
        selectinload(Ticket.contact),
    )
    tickets = list(db.session.scalars(stmt))
    next_cursor = _encode_cursor(tickets[limit - 1], sort) if len(tickets) > limit else None
    return TicketPage(tickets[:limit], next_cursor)


def neighbours(user, ticket: Ticket) -> tuple[int | None, int | None]:
    """Numbers of the tickets before and after ``ticket`` in its committee's open queue.

    The queue's order is most recent activity first, as the queue page shows it.
    """
    base = access.visible_tickets(user).where(
        Ticket.committee_id == ticket.committee_id, Ticket.status.in_(OPEN_STATUSES)
    )
    key = sa.tuple_(Ticket.updated_at, Ticket.id)
    here = sa.tuple_(ticket.updated_at, ticket.id)
    previous = db.session.scalar(
        base.where(key > here)
        .order_by(Ticket.updated_at.asc(), Ticket.id.asc())
        .limit(1)
        .with_only_columns(Ticket.number)
    )
    following = db.session.scalar(
        base.where(key < here)
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(1)
        .with_only_columns(Ticket.number)
    )
    return previous, following


def open_statuses() -> tuple[TicketStatus, ...]:
    """Statuses that still need work."""
    return OPEN_STATUSES


def committee_by_slug(user, slug: str) -> Committee | None:
    """The committee ``slug`` if ``user`` may open its queue."""
    return db.session.scalar(access.readable_committees(user).where(Committee.slug == slug))


def known_committee_by_slug(user, slug: str) -> Committee | None:
    """The committee ``slug`` if ``user`` may know it exists (a target to move tickets to)."""
    return db.session.scalar(access.visible_committees(user).where(Committee.slug == slug))


def contact_tickets(user, ticket: Ticket, *, limit: int = 10) -> list[Ticket]:
    """The contact's other tickets that ``user`` may see, most recent first."""
    if ticket.contact_id is None:
        return []
    stmt = (
        access.visible_tickets(user)
        .where(Ticket.contact_id == ticket.contact_id, Ticket.id != ticket.id)
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
