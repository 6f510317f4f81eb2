"""Inbound mail: mailboxes and their watermarks, receipts (dedupe), quarantine, routing rules,
bounce and complaint records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import JSONType, str_enum, utcnow
from helpdesk.extensions import db
from helpdesk.models.mail import RawMail


class Mailbox(db.Model):
    """An IMAP account we fetch from. Secrets are stored encrypted (helpdesk.secrets)."""

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    port: Mapped[int]
    tls: Mapped[str] = mapped_column(sa.String(16))  # implicit | starttls | none
    username: Mapped[str] = mapped_column(sa.String(320))
    password_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    oauth2_client_id: Mapped[str | None] = mapped_column(sa.String(255))
    oauth2_client_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    oauth2_refresh_token_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    oauth2_token_url: Mapped[str | None] = mapped_column(sa.String(500))
    folders: Mapped[list[str]] = mapped_column(JSONType, default=list)
    after_import: Mapped[str] = mapped_column(sa.String(255), default="leave")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Health, written by the fetcher.
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # Mails on the server that are newer than the watermark, at the last look.
    backlog: Mapped[int] = mapped_column(default=0)

    folder_states: Mapped[list[MailboxFolder]] = relationship(
        back_populates="mailbox", cascade="all, delete-orphan"
    )

    @property
    def healthy(self) -> bool:
        """Whether the last attempt succeeded (a new mailbox counts as healthy)."""
        return self.consecutive_failures == 0


class MailboxFolder(db.Model):
    """The (UIDVALIDITY, last UID) watermark of one folder of a mailbox."""

    __tablename__ = "mailbox_folders"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(sa.ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(sa.String(255))
    uidvalidity: Mapped[int] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    mailbox: Mapped[Mailbox] = relationship(back_populates="folder_states")

    __table_args__ = (sa.UniqueConstraint("mailbox_id", "folder"),)


class ReceiptOutcome(enum.StrEnum):
    """What the ingester did with a mail, for one scope."""

    TICKET_CREATED = "ticket_created"
    FOLLOW_UP = "follow_up"
    AUTO_REPLY_ATTACHED = "auto_reply_attached"
    AUTO_REPLY_DROPPED = "auto_reply_dropped"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    OWN_MAIL_DROPPED = "own_mail_dropped"


class InboundReceipt(db.Model):
    """The dedupe record: this mail (by Message-ID, or raw SHA-256) was handled in this scope.

    The scope is ``committee:<id>`` for mail that reached a committee, or the kind of record
    for mail that opened none (``bounce``, ``complaint``, ``auto_reply``, ``own_mail``).
    Receipts outlive deleted tickets: they are the tombstones that keep a deleted ticket's
    mail from being imported again.
    """

    __tablename__ = "inbound_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(998))
    scope: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[ReceiptOutcome] = mapped_column(str_enum(ReceiptOutcome, "receipt_outcome"))
    ticket_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    raw_mail_id: Mapped[int] = mapped_column(sa.ForeignKey("raw_mails.id"), index=True)
    # Set when the ticket was deleted: its mail must never come back.
    tombstone: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("dedupe_key", "scope"),)


class QuarantinedMail(db.Model):
    """A mail the ingester could not handle, kept with its raw bytes and the reason."""

    __tablename__ = "quarantined_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    raw_mail_id: Mapped[int] = mapped_column(sa.ForeignKey("raw_mails.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(500))  # mailbox/folder or file path
    mailbox: Mapped[str | None] = mapped_column(sa.String(64))
    folder: Mapped[str | None] = mapped_column(sa.String(255))
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)
    uid: Mapped[int | None] = mapped_column(sa.BigInteger)
    stage: Mapped[str] = mapped_column(sa.String(32))
    error: Mapped[str] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(sa.String(255))

    raw_mail: Mapped[RawMail] = relationship()


class RoutingRule(db.Model):
    """An ordered routing rule: conditions that must all hold, and what to do then."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    # {"recipient": [...], "list_id": [...], "sender_kind": [...], "sender_domain": [...],
    #  "subject_keywords": [...], "body_keywords": [...]}; every present key must match.
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    committee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="CASCADE"), index=True
    )
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    priority: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BounceRecord(db.Model):
    """A delivery status notification about mail we sent."""

    __tablename__ = "bounce_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    raw_mail_id: Mapped[int] = mapped_column(sa.ForeignKey("raw_mails.id"), index=True)
    original_message_id: Mapped[str | None] = mapped_column(sa.String(998), index=True)
    outbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbound_messages.id", ondelete="SET NULL"), index=True
    )
    # [{"address", "status", "action", "diagnostic", "permanent"}]
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ComplaintRecord(db.Model):
    """An abuse (ARF) feedback report about mail we sent."""

    __tablename__ = "complaint_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    raw_mail_id: Mapped[int] = mapped_column(sa.ForeignKey("raw_mails.id"), index=True)
    feedback_type: Mapped[str] = mapped_column(sa.String(64))
    original_message_id: Mapped[str | None] = mapped_column(sa.String(998), index=True)
    outbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbound_messages.id", ondelete="SET NULL"), index=True
    )
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
