"""Collision detection: a send is held when somebody else changed the ticket meanwhile.

A ticket page carries a :class:`Snapshot` of what the agent saw: the ticket's version, its
newest message and its newest audit event. A send claims the version it was loaded at
with one conditional UPDATE, so of two agents sending on the same version exactly one
goes through (PostgreSQL re-checks the condition after waiting for the other's row
lock). The other is shown what changed since its snapshot and sends again knowingly:
its form then carries the newer snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import AuditEvent, Direction, Message, Ticket

log = logging.getLogger(__name__)

# Events that a message in the thread shows already.
_SHOWN_AS_MESSAGES = {"ticket.noted", "ticket.replied"}


@dataclass(frozen=True)
class Snapshot:
    """What an agent saw of a ticket: version, newest message id, newest audit event id."""

    version: int
    message_id: int
    event_id: int

    def encode(self) -> str:
        """The snapshot as a form value."""
        return f"{self.version}.{self.message_id}.{self.event_id}"

    @classmethod
    def decode(cls, value: str | None) -> Snapshot | None:
        """A snapshot from a form value; None when it is missing or malformed."""
        parts = (value or "").split(".")
        if len(parts) != 3 or not all(p.isdigit() and len(p) < 19 for p in parts):
            return None
        return cls(*(int(p) for p in parts))


@dataclass(frozen=True)
class Change:
    """One thing that happened to a ticket after a snapshot."""

    at: datetime
    who: str
    what: str
    message: Message | None = None


class Collision(ServiceError):
    """The ticket changed after the agent loaded it; nothing was sent."""

    def __init__(self, changes: list[Change], snapshot: Snapshot) -> None:
        super().__init__(
            "Somebody else changed this ticket while you were writing. Nothing was sent."
        )
        self.changes = changes
        self.snapshot = snapshot


def snapshot_of(ticket_id: int) -> Snapshot:
    """The ticket as it is now."""
    version = db.session.scalar(sa.select(Ticket.version).where(Ticket.id == ticket_id)) or 0
    message_id = db.session.scalar(
        sa.select(sa.func.max(Message.id)).where(Message.ticket_id == ticket_id)
    )
    event_id = db.session.scalar(
        sa.select(sa.func.max(AuditEvent.id)).where(AuditEvent.ticket_id == ticket_id)
    )
    return Snapshot(version, message_id or 0, event_id or 0)


def _describe(event: AuditEvent) -> str:
    data = event.data or {}
    if event.action == "ticket.status_changed":
        return f"changed the status to {data.get('new')}"
    if event.action == "ticket.assigned":
        name = event.subject_user.name if event.subject_user else "somebody"
        return f"assigned the ticket to {name}"
    if event.action == "ticket.unassigned":
        return "unassigned the ticket"
    if event.action == "ticket.tagged":
        return "set the tags to " + (", ".join(data.get("tags") or []) or "none")
    if event.action == "ticket.moved":
        return "moved the ticket to another committee"
    if event.action == "ticket.merged":
        return f"merged ticket #{data.get('source_number')} into this one"
    return event.action.removeprefix("ticket.").replace("_", " ")


def changes_since(ticket_id: int, snapshot: Snapshot, *, user_id: int) -> list[Change]:
    """What others did to the ticket after ``snapshot``, oldest first."""
    changes: list[Change] = []
    messages = db.session.scalars(
        sa.select(Message)
        .where(Message.ticket_id == ticket_id, Message.id > snapshot.message_id)
        .where(sa.or_(Message.author_id.is_(None), Message.author_id != user_id))
        .order_by(Message.id)
    )
    for message in messages:
        if message.direction is Direction.INBOUND:
            who, what = message.from_name or message.from_address or "The contact", "wrote"
        elif message.direction is Direction.NOTE:
            who, what = (message.author.name if message.author else "Somebody"), "added a note"
        else:
            who = message.author.name if message.author else message.from_name or "Somebody"
            what = "sent a reply"
        changes.append(Change(message.created_at, who, what, message))
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.ticket_id == ticket_id, AuditEvent.id > snapshot.event_id)
        .where(sa.or_(AuditEvent.actor_id.is_(None), AuditEvent.actor_id != user_id))
        .where(AuditEvent.action.not_in(_SHOWN_AS_MESSAGES))
        .order_by(AuditEvent.id)
    )
    for event in events:
        who = event.actor.name if event.actor else "The system"
        changes.append(Change(event.created_at, who, _describe(event)))
    return sorted(changes, key=lambda c: c.at)


def claim(ticket_id: int, snapshot: Snapshot | None, *, user_id: int) -> None:
    """Take the right to send on the ticket as the agent saw it, or raise :class:`Collision`.

    Changes the agent made themselves (in another tab) do not hold a send.
    """
    if snapshot is None:
        raise ServiceError("The form is incomplete; reload the ticket and try again.")
    claimed = db.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.version == snapshot.version)
        .values(version=Ticket.version + 1)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if claimed:
        return
    changes = changes_since(ticket_id, snapshot, user_id=user_id)
    if changes:
        log.info("send on ticket %s held: %d change(s) by others", ticket_id, len(changes))
        raise Collision(changes=changes, snapshot=snapshot_of(ticket_id))
    db.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id)
        .values(version=Ticket.version + 1)
        .execution_options(synchronize_session="fetch")
    )
