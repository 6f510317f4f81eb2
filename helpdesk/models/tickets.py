"""Tickets: a conversation with a contact, owned by one committee."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import str_enum, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.committees import Committee
    from helpdesk.models.contacts import Contact
    from helpdesk.models.mail import Message
    from helpdesk.models.users import User


class TicketStatus(enum.StrEnum):
    """A ticket's place in its life cycle."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting for the contact
    SOLVED = "solved"
    CLOSED = "closed"


OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class Priority(enum.StrEnum):
    """How urgently a ticket needs an answer."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Ticket(db.Model):
    """A ticket in a committee's queue."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The public number, as in "[PyConDE #1234]": on PostgreSQL the column's default takes
    # it from the ticket_number_seq sequence (read back with RETURNING); SQLite's come from
    # the `ticket_number` counter (see helpdesk.ticket_rows.next_ticket_number).
    number: Mapped[int] = mapped_column(unique=True, server_default=sa.FetchedValue())
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    committee_id: Mapped[int] = mapped_column(sa.ForeignKey("committees.id"), index=True)
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEW, index=True
    )
    priority: Mapped[Priority] = mapped_column(
        str_enum(Priority, "ticket_priority"), default=Priority.NORMAL
    )
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_at: Mapped[datetime | None]
    # Bumped by every change (mail, note, assignment, status...): a form carries the version
    # it was loaded at, so a send can tell that somebody else changed the ticket meanwhile.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Set when this ticket was merged into another: its number then leads to that one.
    merged_into_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )

    committee: Mapped[Committee] = relationship()
    assignee: Mapped[User | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    tag_rows: Mapped[list[TicketTag]] = relationship(
        cascade="all, delete-orphan", back_populates="ticket", order_by="TicketTag.tag"
    )
    recusals: Mapped[list[TicketRecusal]] = relationship(
        cascade="all, delete-orphan", back_populates="ticket"
    )
    participants: Mapped[list[TicketParticipant]] = relationship(
        cascade="all, delete-orphan", back_populates="ticket"
    )
    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket",
        cascade="all, delete-orphan",
        order_by="(Message.created_at, Message.id)",
    )

    __table_args__ = (sa.Index("ix_tickets_committee_status", "committee_id", "status"),)

    @property
    def tags(self) -> list[str]:
        """The ticket's tags, sorted."""
        return [row.tag for row in self.tag_rows]

    @property
    def recused_user_ids(self) -> set[int]:
        """Ids of members who must not see this ticket."""
        return {row.user_id for row in self.recusals}

    @property
    def is_open(self) -> bool:
        """New, open or pending."""
        return self.status in OPEN_STATUSES


class TicketTag(db.Model):
    """A free-form label on a ticket."""

    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)

    ticket: Mapped[Ticket] = relationship(back_populates="tag_rows")


class TicketRecusal(db.Model):
    """A committee member who must not see a ticket (e.g. a report about them)."""

    __tablename__ = "ticket_recusals"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="recusals")


class TicketParticipant(db.Model):
    """Somebody besides the contact who takes part in a ticket's conversation (Cc)."""

    __tablename__ = "ticket_participants"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    # Lower-cased address.
    address: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class TicketLink(db.Model):
    """A relation between two tickets (a mail that named another ticket, a merge, a reopen)."""

    __tablename__ = "ticket_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    # By number: the other ticket may be deleted, or one the reader may not see.
    linked_number: Mapped[int]
    # referenced | follow_up_of | merged_from | merged_into
    kind: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(db.Model):
    """A named gapless-enough counter (ticket numbers); incremented with UPDATE RETURNING."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)
