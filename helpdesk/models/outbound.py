"""Outgoing transactional mail (acknowledgements, replies, notifications) and suppressions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.database import JSONType, str_enum, utcnow
from helpdesk.extensions import db


class OutboundKind(enum.StrEnum):
    """Why a transactional mail is sent."""

    ACKNOWLEDGEMENT = "acknowledgement"
    REPLY = "reply"
    NOTIFICATION = "notification"
    TRANSACTIONAL = "transactional"  # through the API
    TEST = "test"


class OutboundStatus(enum.StrEnum):
    """Where a transactional mail is in its delivery."""

    QUEUED = "queued"
    SENDING = "sending"  # handed to a worker, outcome not yet recorded
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the hand-off may or may not have happened: never resent blindly
    SUPPRESSED = "suppressed"


class OutboundMessage(db.Model):
    """One transactional mail, written before the job that sends it is queued."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OutboundKind] = mapped_column(str_enum(OutboundKind, "outbound_kind"))
    status: Mapped[OutboundStatus] = mapped_column(
        str_enum(OutboundStatus, "outbound_status"), default=OutboundStatus.QUEUED, index=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    # The message row in the ticket's thread that this mail is (replies, acknowledgements).
    thread_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    # Our RFC 5322 Message-ID without angle brackets.
    message_id: Mapped[str] = mapped_column(sa.String(998), unique=True)
    from_addr: Mapped[str] = mapped_column(sa.String(500))
    reply_to: Mapped[str | None] = mapped_column(sa.String(500))
    to: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cc: Mapped[list[str]] = mapped_column(JSONType, default=list)
    bcc: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The first recipient's normalised address, for "one acknowledgement per sender" checks.
    to_key: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    text: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str | None] = mapped_column(sa.Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # [{"sha256", "filename", "content_type", "size"}] in the attachment store.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # The agent whose API key sent it (POST /api/v1/messages); only they may read it back.
    api_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (sa.Index("ix_outbound_messages_kind_to_key", "kind", "to_key", "created_at"),)


class SuppressionReason(enum.StrEnum):
    """Why an address gets no more mail (transactional mail ignores list unsubscribes only)."""

    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE_ALL = "unsubscribe_all"
    MANUAL = "manual"


class Suppression(db.Model):
    """An address on the global suppression list."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(sa.String(320), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(
        str_enum(SuppressionReason, "suppression_reason")
    )
    source: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
