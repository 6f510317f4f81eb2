"""The people who write to the conference: attendees, speakers, grant applicants."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import str_enum, utcnow
from helpdesk.extensions import db


class ContactKindName(enum.StrEnum):
    """What a contact is to the conference; a person can be several."""

    ATTENDEE = "attendee"
    SPEAKER = "speaker"
    GRANT_APPLICANT = "grant_applicant"


class Contact(db.Model):
    """Somebody who writes to us or whom we write to."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # As first seen, for display and for replies.
    email: Mapped[str] = mapped_column(sa.String(320))
    # Lower-cased address: the identity, unique case-insensitively.
    email_key: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    kind_rows: Mapped[list[ContactKind]] = relationship(
        cascade="all, delete-orphan", back_populates="contact"
    )
    references: Mapped[list[ContactReference]] = relationship(
        cascade="all, delete-orphan", back_populates="contact"
    )

    @property
    def kinds(self) -> set[ContactKindName]:
        """The contact's kinds as a set."""
        return {row.kind for row in self.kind_rows}

    def add_kind(self, kind: ContactKindName | str) -> None:
        """Mark the contact as being of ``kind`` (idempotent)."""
        kind = ContactKindName(kind)
        if kind not in self.kinds:
            self.kind_rows.append(ContactKind(kind=kind))


class ContactKind(db.Model):
    """One kind a contact has."""

    __tablename__ = "contact_kinds"

    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[ContactKindName] = mapped_column(
        str_enum(ContactKindName, "contact_kind"), primary_key=True, index=True
    )

    contact: Mapped[Contact] = relationship(back_populates="kind_rows")


class ContactReference(db.Model):
    """The contact's identity in another system (e.g. a pretalx speaker code)."""

    __tablename__ = "contact_references"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    system: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="references")

    __table_args__ = (sa.UniqueConstraint("system", "external_id"),)
