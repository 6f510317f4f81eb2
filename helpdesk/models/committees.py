"""Committees (the queues), the addresses that route to them, and their members."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import str_enum, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.users import User


class Visibility(enum.StrEnum):
    """Who may read a committee's tickets (see helpdesk.access)."""

    OPEN = "open"  # every agent
    MEMBERS = "members"  # members only; the committee itself is listed for everyone
    PRIVATE = "private"  # members only; for anyone else the committee does not exist


class MembershipRole(enum.StrEnum):
    """A member answers tickets; a lead also manages the committee's members."""

    MEMBER = "member"
    LEAD = "lead"


class Committee(db.Model):
    """A volunteer committee and its ticket queue."""

    __tablename__ = "committees"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    visibility: Mapped[Visibility] = mapped_column(
        str_enum(Visibility, "committee_visibility"), default=Visibility.OPEN
    )
    # Exactly one committee receives mail that no rule routes elsewhere.
    is_triage: Mapped[bool] = mapped_column(default=False)
    # Acknowledgement of new tickets: on by default; an empty template means the default one.
    acknowledge: Mapped[bool] = mapped_column(default=True)
    ack_subject: Mapped[str | None] = mapped_column(sa.Text)
    ack_text: Mapped[str | None] = mapped_column(sa.Text)
    # The committee's Discord channel webhook (its URL holds a secret): encrypted with
    # helpdesk.crypto, like mailbox passwords.
    discord_webhook_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[CommitteeAddress]] = relationship(
        back_populates="committee", cascade="all, delete-orphan", order_by="CommitteeAddress.id"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="committee", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.Index(
            "uq_committees_one_triage",
            "is_triage",
            unique=True,
            postgresql_where=sa.text("is_triage"),
            sqlite_where=sa.text("is_triage"),
        ),
    )

    @property
    def address_list(self) -> list[str]:
        """The committee's addresses in the order they were added."""
        return [a.address for a in self.addresses]


class CommitteeAddress(db.Model):
    """A mail address (often a Google Group) whose mail belongs to one committee."""

    __tablename__ = "committee_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="CASCADE"), index=True
    )
    # Stored lower-cased: mail routing compares addresses case-insensitively.
    address: Mapped[str] = mapped_column(sa.String(320), unique=True)

    committee: Mapped[Committee] = relationship(back_populates="addresses")


class Membership(db.Model):
    """A user's membership of a committee."""

    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    committee_id: Mapped[int] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[MembershipRole] = mapped_column(
        str_enum(MembershipRole, "membership_role"), default=MembershipRole.MEMBER
    )
    # The member asked to hear of new tickets, customer replies and mentions by e-mail.
    notify_email: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    committee: Mapped[Committee] = relationship(back_populates="memberships")
