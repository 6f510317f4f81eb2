"""Mail on a ticket: messages, their attachments and the raw bytes they came from."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import JSONType, str_enum, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.tickets import Ticket
    from helpdesk.models.users import User


class Direction(enum.StrEnum):
    """Where a message went: in from a contact, out to one, or an internal note."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"


class RawMail(db.Model):
    """Received bytes, kept on disk in a content-addressed store under their SHA-256."""

    __tablename__ = "raw_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(db.Model):
    """One mail or note in a ticket's thread."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "message_direction"))
    # RFC 5322 Message-ID without angle brackets; notes have none.
    message_id: Mapped[str | None] = mapped_column(sa.String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(998))
    references: Mapped[str | None] = mapped_column(sa.Text)
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    from_name: Mapped[str] = mapped_column(sa.String(200), default="")
    to_addresses: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cc_addresses: Mapped[list[str]] = mapped_column(JSONType, default=list)
    reply_to: Mapped[str | None] = mapped_column(sa.String(320))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    # Sanitised on the way in; never the mail's original HTML.
    html: Mapped[str | None] = mapped_column(sa.Text)
    raw_mail_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("raw_mails.id", ondelete="SET NULL"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Inbound only: what the classifier said ("personal", "auto_reply", ...).
    classification: Mapped[str | None] = mapped_column(sa.String(32))
    # Whether from_address is the verified sender; False when a Google Group relayed a claim
    # that could not be verified (the claim is then in claimed_sender, never used for identity).
    sender_verified: Mapped[bool] = mapped_column(default=True)
    claimed_sender: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    raw_mail: Mapped[RawMail | None] = relationship()
    author: Mapped[User | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.id"
    )


class Attachment(db.Model):
    """A file that came with (or went out with) a message, stored by content."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(sa.BigInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    # For inline images referenced as cid: from the HTML body.
    content_id: Mapped[str | None] = mapped_column(sa.String(998))
    inline: Mapped[bool] = mapped_column(default=False)

    message: Mapped[Message] = relationship(back_populates="attachments")
