"""Templates, campaigns, one delivery per recipient, and what providers report back."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import JSONType, str_enum, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.audience import MailingList, Subscriber
    from helpdesk.models.committees import Committee


class MailLayout(db.Model):
    """The frame around a committee's bulk mail (or the default one, committee unset).

    The HTML and text bodies receive the rendered template as ``content`` and must keep
    the unsubscribe and preference links and the postal address.
    """

    __tablename__ = "mail_layouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="CASCADE"), unique=True
    )
    html: Mapped[str] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    committee: Mapped[Committee | None] = relationship()


class MailTemplate(db.Model):
    """A named subject, HTML and text, rendered in Jinja's sandbox."""

    __tablename__ = "mail_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    committee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str] = mapped_column(sa.Text)
    # Empty: derived from the HTML.
    text: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    committee: Mapped[Committee | None] = relationship()


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class Campaign(db.Model):
    """One newsletter or notice to a list (optionally a segment of it)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    committee_id: Mapped[int] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="RESTRICT"), index=True
    )
    list_id: Mapped[int] = mapped_column(
        sa.ForeignKey("mailing_lists.id", ondelete="RESTRICT"), index=True
    )
    template_id: Mapped[int] = mapped_column(
        sa.ForeignKey("mail_templates.id", ondelete="RESTRICT"), index=True
    )
    # {"contact_kinds": ["speaker"], "attributes": {"country": "IT"}, "languages": ["it"]}
    segment: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[CampaignStatus] = mapped_column(
        str_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT, index=True
    )
    from_addr: Mapped[str] = mapped_column(sa.String(500), default="")
    reply_to: Mapped[str | None] = mapped_column(sa.String(500))
    # What is sent, frozen at launch so that editing the template cannot change a send.
    subject: Mapped[str | None] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    text: Mapped[str | None] = mapped_column(sa.Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(index=True)
    launched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Why the campaign paused itself (bounce or complaint rate), shown to the organiser.
    pause_reason: Mapped[str | None] = mapped_column(sa.Text)
    recipient_count: Mapped[int] = mapped_column(default=0)
    track_opens: Mapped[bool] = mapped_column(default=False)
    track_clicks: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    committee: Mapped[Committee] = relationship()
    mailing_list: Mapped[MailingList] = relationship()
    template: Mapped[MailTemplate] = relationship()


class DeliveryStatus(enum.StrEnum):
    """Where one recipient's copy is in the hand-off to the provider."""

    PENDING = "pending"
    CLAIMED = "claimed"  # in a batch under lease, not yet handed off
    SENT = "sent"  # the provider accepted it
    UNCERTAIN = "uncertain"  # may or may not have left: never resent automatically
    FAILED = "failed"  # the provider refused it for good
    SKIPPED = "skipped"  # suppressed or unsubscribed when its batch was claimed
    DROPPED = "dropped"  # an uncertain delivery the organiser chose not to resend
    CANCELLED = "cancelled"


class Delivery(db.Model):
    """One recipient of one campaign; unique per campaign and address."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    address_key: Mapped[str] = mapped_column(sa.String(320))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    # The claim that owns the row while it is CLAIMED (a random token per batch).
    batch: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None]
    # The latest provider event: processed, delivered, deferred, bounce, dropped...
    event: Mapped[str | None] = mapped_column(sa.String(32))
    event_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship()
    subscriber: Mapped[Subscriber] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "address_key"),
        sa.Index("ix_deliveries_campaign_id_status", "campaign_id", "status"),
    )


class ProviderEvent(db.Model):
    """A provider's event (a SendGrid webhook entry), kept once per event id."""

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32), default="sendgrid")
    event_id: Mapped[str] = mapped_column(sa.String(255))
    event: Mapped[str] = mapped_column(sa.String(32))
    email: Mapped[str] = mapped_column(sa.String(320), default="")
    occurred_at: Mapped[datetime | None]
    delivery_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    outbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbound_messages.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("provider", "event_id"),)


class CampaignEventCount(db.Model):
    """How many provider events of one kind a campaign drew in one hour (UTC).

    Added to as events arrive (helpdesk.outbound.event_counts), so that a campaign's totals
    and timeline are read from a few hundred rows instead of counted over all its events.
    """

    __tablename__ = "campaign_event_counts"

    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    event: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # Whole hours since 1970-01-01 UTC: the same integer on every database.
    hour: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(default=0)


class IdempotencyRecord(db.Model):
    """The first answer to an API request sent with an Idempotency-Key, replayed after."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    # SHA-256 of the request body: the same key with another body is a client error.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    outbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbound_messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("token_id", "key"),)
