"""Ticket service: create tickets, add mail and notes, assign, change status, tag, recuse, move.

Functions take ids and plain values, change the session and flush; the caller (a
request, a job, a CLI command) commits once. Authorisation is the caller's duty through
helpdesk.access; what is checked here is what must hold whoever acts (an assignee must
be able to read the ticket, a recused member cannot stay assigned).
"""

from __future__ import annotations

from collections.abc import Iterable

from helpdesk import access, audit, search_index
from helpdesk.database import utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    Committee,
    Contact,
    Direction,
    Message,
    Priority,
    Ticket,
    TicketRecusal,
    TicketStatus,
    TicketTag,
    User,
)
from helpdesk.ticket_rows import (
    announce_opened,
    clean_tag,
    message_values,
    ticket_values,
)


def touch(ticket: Ticket) -> None:
    """Record that ``ticket`` changed: a newer update time and the next version.

    The version is incremented in SQL so that two concurrent changes never write the same
    number (helpdesk.collisions relies on it).
    """
    ticket.updated_at = utcnow()
    ticket.version = Ticket.version + 1


def get_ticket(ticket_id: int) -> Ticket:
    """The ticket with internal id ``ticket_id`` (no access check); NotFound otherwise."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("no such ticket")
    return ticket


def _committee(committee_id: int) -> Committee:
    committee = db.session.get(Committee, committee_id)
    if committee is None:
        raise NotFound("no such committee", field="committee")
    return committee


def create_ticket(
    committee_id: int,
    subject: str,
    *,
    contact_id: int | None = None,
    priority: Priority | str = Priority.NORMAL,
    tags: Iterable[str] = (),
    actor_id: int | None = None,
) -> Ticket:
    """Open a new ticket in a committee's queue."""
    ticket = Ticket(
        **ticket_values(committee_id, subject, contact_id=contact_id, priority=priority),
        # The row just read, so that reading ticket.committee in this transaction needs
        # no second query.
        committee=_committee(committee_id),
        # Known empty: adding to them later needs no query.
        participants=[],
        tag_rows=[],
    )
    db.session.add(ticket)
    for tag in tags:
        _add_tag(ticket, tag)
    db.session.flush()
    contact = db.session.get(Contact, contact_id) if contact_id is not None else None
    announce_opened(
        ticket.id,
        ticket.number,
        committee_id,
        [ticket.subject, *((contact.email, contact.name) if contact else ())],
        actor_id=actor_id,
    )
    return ticket


def add_message(
    ticket_id: int,
    direction: Direction | str,
    *,
    text: str,
    reopen: bool = True,
    **fields,
) -> Message:
    """Append a message to a ticket's thread; ``fields`` are its columns as
    :func:`helpdesk.ticket_rows.message_values` takes them (``html`` must already be
    sanitised).

    An inbound message reopens a pending, solved or closed ticket unless ``reopen`` is
    false (auto-replies).
    """
    ticket = get_ticket(ticket_id)
    message = Message(**message_values(ticket.id, direction, text=text, **fields), attachments=[])
    db.session.add(message)
    message_arrived(ticket, message.direction, reopen=reopen)
    db.session.flush()
    search_index.add_text(ticket.id, text)
    return message


def message_arrived(ticket: Ticket, direction: Direction, *, reopen: bool) -> None:
    """What a new message in its thread does to a ticket (see :func:`add_message`)."""
    touch(ticket)
    if (
        reopen
        and direction is Direction.INBOUND
        and ticket.status
        in (
            TicketStatus.PENDING,
            TicketStatus.SOLVED,
            TicketStatus.CLOSED,
        )
    ):
        # The contact wrote again: the ticket needs attention.
        ticket.status = TicketStatus.OPEN
        ticket.closed_at = None


def add_note(ticket_id: int, author_id: int, text: str) -> Message:
    """Add an internal note; notes are never mailed."""
    if not text.strip():
        raise ServiceError("a note needs some text", field="text")
    author = db.session.get(User, author_id)
    note = add_message(
        ticket_id,
        Direction.NOTE,
        text=text.strip(),
        author_id=author_id,
        from_name=author.name if author else "",
    )
    audit.record("ticket.noted", actor_id=author_id, ticket_id=ticket_id, message_id=note.id)
    return note


def set_status(ticket_id: int, status: TicketStatus | str, *, actor_id: int | None = None) -> None:
    """Change a ticket's status."""
    ticket = get_ticket(ticket_id)
    status = TicketStatus(status)
    if ticket.status == status:
        return
    old = ticket.status
    ticket.status = status
    ticket.closed_at = utcnow() if status in (TicketStatus.SOLVED, TicketStatus.CLOSED) else None
    touch(ticket)
    audit.record(
        "ticket.status_changed",
        actor_id=actor_id,
        ticket_id=ticket_id,
        old=old.value,
        new=status.value,
    )


def assignee_choice(value: str, me: int) -> int | None:
    """The agent id a form's assignee value names: ``me``, an id, or nobody (``none``/empty)."""
    value = value.strip()
    if value == "me":
        return me
    if value in ("", "none"):
        return None
    if not value.isdigit():
        raise ServiceError("choose an agent", field="assignee")
    return int(value)


def assign(ticket_id: int, assignee_id: int | None, *, actor_id: int | None = None) -> None:
    """Assign a ticket to an agent who may read it, or unassign it (``None``)."""
    ticket = get_ticket(ticket_id)
    if assignee_id is not None:
        assignee = db.session.get(User, assignee_id)
        if assignee is None or not access.can_read_ticket(assignee, ticket):
            raise ServiceError("that agent cannot see this ticket", field="assignee")
    if ticket.assignee_id == assignee_id:
        return
    ticket.assignee_id = assignee_id
    touch(ticket)
    if assignee_id is not None and ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.OPEN
    audit.record(
        "ticket.assigned" if assignee_id else "ticket.unassigned",
        actor_id=actor_id,
        ticket_id=ticket_id,
        subject_user_id=assignee_id,
    )


def _add_tag(ticket: Ticket, tag: str) -> None:
    tag = clean_tag(tag)
    if tag not in ticket.tags:
        ticket.tag_rows.append(TicketTag(tag=tag))


def set_tags(ticket_id: int, tags: Iterable[str], *, actor_id: int | None = None) -> None:
    """Replace a ticket's tags."""
    ticket = get_ticket(ticket_id)
    wanted = sorted({clean_tag(t) for t in tags})
    if wanted == ticket.tags:
        return
    ticket.tag_rows = [TicketTag(tag=t) for t in wanted]
    touch(ticket)
    audit.record("ticket.tagged", actor_id=actor_id, ticket_id=ticket_id, tags=wanted)


def recuse(ticket_id: int, user_id: int, *, actor_id: int | None = None) -> None:
    """Hide a ticket from a member (a report about them); unassigns them if needed."""
    ticket = get_ticket(ticket_id)
    if db.session.get(User, user_id) is None:
        raise NotFound("no such agent", field="user")
    if user_id in ticket.recused_user_ids:
        return
    ticket.recusals.append(TicketRecusal(user_id=user_id))
    if ticket.assignee_id == user_id:
        ticket.assignee_id = None
    touch(ticket)
    db.session.flush()
    audit.record("ticket.recused", actor_id=actor_id, ticket_id=ticket_id, subject_user_id=user_id)


def add_tags(ticket_id: int, tags: Iterable[str], *, actor_id: int | None = None) -> None:
    """Add tags to a ticket, keeping the ones it has."""
    ticket = get_ticket(ticket_id)
    set_tags(ticket_id, [*ticket.tags, *tags], actor_id=actor_id)


def remove_tags(ticket_id: int, tags: Iterable[str], *, actor_id: int | None = None) -> None:
    """Remove tags from a ticket (tags it does not have are ignored)."""
    ticket = get_ticket(ticket_id)
    unwanted = {clean_tag(t) for t in tags}
    set_tags(ticket_id, [t for t in ticket.tags if t not in unwanted], actor_id=actor_id)


def move(ticket_id: int, committee_id: int, *, actor_id: int | None = None) -> None:
    """Move a ticket to another committee's queue.

    The ticket then follows the new committee's visibility: it leaves the old queue, and
    an assignee who may not read it there is unassigned. The audit event keeps both
    committees' ids, never their names (a private committee's name is not for everyone
    who may read the ticket later).
    """
    ticket = get_ticket(ticket_id)
    if db.session.get(Committee, committee_id) is None:
        raise NotFound("no such committee", field="committee")
    if ticket.committee_id == committee_id:
        return
    old = ticket.committee_id
    ticket.committee_id = committee_id
    touch(ticket)
    db.session.flush()
    db.session.expire(ticket, ["committee"])
    if ticket.assignee_id is not None:
        assignee = db.session.get(User, ticket.assignee_id)
        if assignee is None or not access.can_read_ticket(assignee, ticket):
            ticket.assignee_id = None
    audit.record(
        "ticket.moved",
        actor_id=actor_id,
        ticket_id=ticket_id,
        committee_id=committee_id,
        from_committee_id=old,
        to_committee_id=committee_id,
    )
