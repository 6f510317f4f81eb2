"""The rows of new tickets and messages, and writing them with prebuilt Core statements.

The ticket service (helpdesk.tickets) works on ORM objects, which suits a request that
changes one ticket. Ingestion opens hundreds of tickets a minute, and there a flush of
the unit of work costs several times the INSERT it sends. So the busy path writes the
same rows here, one prebuilt statement each, and gets ids back. The column values come
from the builders below, which the service's ORM functions use too, and a new ticket is
announced (search document, audit event, notifications) the same way on both paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa

from helpdesk import audit, notifications, search_index
from helpdesk.database import transaction_cache, upsert, utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    Committee,
    Counter,
    Direction,
    Message,
    Priority,
    Ticket,
    TicketStatus,
    TicketTag,
)
from helpdesk.models.committees import Visibility

TICKET_COUNTER = "ticket_number"
MAX_TAG_LENGTH = 64
MAX_SUBJECT_LENGTH = 2000

# On PostgreSQL (see the migrations that made it and made it the column's default):
# numbers without a lock held to commit.
TICKET_SEQUENCE = "ticket_number_seq"


def next_ticket_number() -> int:
    """Take the next public ticket number: unique and increasing.

    PostgreSQL takes it from a sequence, which never waits for other transactions (a
    rolled-back one leaves a gap); SQLite, with one writer at a time, from a counter row.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return int(db.session.scalar(sa.select(sa.func.nextval(TICKET_SEQUENCE))))
    bump = (
        sa.update(Counter)
        .where(Counter.name == TICKET_COUNTER)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    number = db.session.scalar(bump)
    if number is None:
        db.session.execute(
            upsert(db.session, Counter)
            .values(name=TICKET_COUNTER, value=0)
            .on_conflict_do_nothing()
        )
        number = db.session.scalar(bump)
    return int(number)


def clean_tag(tag: str) -> str:
    """A tag as stored: lower case, single spaces; ServiceError when empty or too long."""
    tag = " ".join(tag.strip().lower().split())
    if not tag or len(tag) > MAX_TAG_LENGTH:
        raise ServiceError(f"a tag has 1 to {MAX_TAG_LENGTH} characters", field="tags")
    return tag


def committee_visibility(committee_id: int) -> Visibility:
    """The visibility of the committee a ticket is opened in, read once per transaction
    (never from a copy older than the transaction); NotFound for no such committee."""
    known = transaction_cache(db.session(), "helpdesk.committee_visibility")
    if committee_id not in known:
        table = Committee.__table__
        known[committee_id] = db.session.connection().scalar(
            sa.select(table.c.visibility).where(table.c.id == committee_id)
        )
    if known[committee_id] is None:
        raise NotFound("no such committee", field="committee")
    return known[committee_id]


def ticket_values(
    committee_id: int, subject: str, *, contact_id: int | None, priority: Priority | str
) -> dict[str, Any]:
    """The columns of a new ticket (on SQLite its number is taken here; PostgreSQL's
    column default takes it in the INSERT)."""
    now = utcnow()
    values: dict[str, Any] = {
        "subject": subject.strip()[:MAX_SUBJECT_LENGTH],
        "committee_id": committee_id,
        "contact_id": contact_id,
        "priority": Priority(priority),
        "status": TicketStatus.NEW,
        "created_at": now,
        "updated_at": now,
    }
    if db.session.get_bind().dialect.name != "postgresql":
        values["number"] = next_ticket_number()
    return values


def message_values(
    ticket_id: int,
    direction: Direction | str,
    *,
    text: str,
    html: str | None = None,
    subject: str = "",
    from_address: str | None = None,
    from_name: str = "",
    to_addresses: list[str] | None = None,
    cc_addresses: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The columns of a new message in a ticket's thread; ``fields`` sets further ones
    (message_id, in_reply_to, references, raw_mail_id, author_id, ...)."""
    return {
        "ticket_id": ticket_id,
        "direction": Direction(direction),
        "text": text,
        "html": html,
        "subject": subject,
        "from_address": from_address,
        "from_name": from_name,
        "to_addresses": list(to_addresses or []),
        "cc_addresses": list(cc_addresses or []),
        **fields,
    }


def announce_opened(
    ticket_id: int,
    number: int,
    committee_id: int,
    document: list[str],
    *,
    actor_id: int | None = None,
) -> None:
    """What follows the INSERT of a new ticket, whichever path wrote it: its search
    document begun with ``document`` (subject, contact), the audit event, the
    notifications after the commit."""
    search_index.start(ticket_id, document)
    audit.record_now(
        "ticket.created",
        actor_id=actor_id,
        ticket_id=ticket_id,
        committee_id=committee_id,
        number=number,
    )
    notifications.ticket_opened(ticket_id, committee_id)


@dataclass(frozen=True)
class OpenedTicket:
    """A ticket written by :func:`open_ticket`: what the caller goes on with."""

    id: int
    number: int
    committee_id: int
    subject: str
    contact_email: str | None


def open_ticket(
    committee_id: int,
    subject: str,
    *,
    contact: tuple[int, str, str] | None = None,
    priority: Priority | str = Priority.NORMAL,
    tags: Iterable[str] = (),
) -> OpenedTicket:
    """Open a ticket in a committee's queue; ``contact`` is (id, email, name)."""
    committee_visibility(committee_id)  # NotFound before anything is written
    values = ticket_values(
        committee_id, subject, contact_id=contact[0] if contact else None, priority=priority
    )
    connection = db.session.connection()
    ticket_id, number = connection.execute(_ticket_insert(), values).one()
    clean = sorted({clean_tag(tag) for tag in tags})
    if clean:
        connection.execute(
            _insert(TicketTag.__table__), [{"ticket_id": ticket_id, "tag": t} for t in clean]
        )
    announce_opened(
        ticket_id, number, committee_id, [values["subject"], *(contact[1:] if contact else ())]
    )
    return OpenedTicket(
        ticket_id, number, committee_id, values["subject"], contact[1] if contact else None
    )


def insert_message(ticket_id: int, direction: Direction | str, **fields: Any) -> int:
    """Write a message (see :func:`message_values`) and add its text to the ticket's
    search document; returns its id. Nothing about the ticket changes here."""
    values = message_values(ticket_id, direction, **fields)
    message_id = db.session.connection().execute(_message_insert(), values).scalar_one()
    search_index.add_text(ticket_id, values["text"])
    return message_id


def insert_rows(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Write rows of one table in one statement (attachments, participants, links)."""
    if rows:
        db.session.connection().execute(_insert(table), rows)


@cache
def _insert(table: sa.Table) -> sa.Insert:
    return table.insert()


@cache
def _ticket_insert() -> sa.Insert:
    table = Ticket.__table__
    return table.insert().returning(table.c.id, table.c.number)


@cache
def _message_insert() -> sa.Insert:
    table = Message.__table__
    return table.insert().returning(table.c.id)
