"""Who receives newsletters and notices: subscribers, committee-owned lists, consent."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import JSONType, str_enum, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.committees import Committee
    from helpdesk.models.contacts import Contact


class SubscriberStatus(enum.StrEnum):
    """Whether an address may receive bulk mail at all (lists aside)."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"  # from everything
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(db.Model):
    """One address that bulk mail can go to; unique by its normalised form."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # addresses.normalise(email): lower-cased, the key that makes one person one row.
    address_key: Mapped[str] = mapped_column(sa.String(320), unique=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    language: Mapped[str] = mapped_column(sa.String(16), default="")
    # Free-form values for templates and segments ({"country": "IT", "ticket": "student"}).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[SubscriberStatus] = mapped_column(
        str_enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.ACTIVE
    )
    # The helpdesk contact with the same address, for segments by contact kind.
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact | None] = relationship()
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan"
    )


class MailingList(db.Model):
    """A list owned by a committee, with single or double opt-in."""

    __tablename__ = "mailing_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    committee_id: Mapped[int] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="RESTRICT"), index=True
    )
    double_opt_in: Mapped[bool] = mapped_column(default=False)
    # Shown on the public subscribe form when true.
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    committee: Mapped[Committee] = relationship()
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="mailing_list", cascade="all, delete-orphan"
    )


class SubscriptionStatus(enum.StrEnum):
    """A subscription waiting for confirmation, live, or ended."""

    PENDING = "pending"  # double opt-in: confirmation link sent, not yet clicked
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class ConsentMethod(enum.StrEnum):
    """How the consent behind a subscription was given."""

    FORM = "form"  # the public subscribe form
    IMPORT = "import"  # a CSV file an organiser vouched for
    ADMIN = "admin"  # added by hand in the organiser pages
    API = "api"


class Subscription(db.Model):
    """A subscriber on a list, with the record of their consent."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(sa.ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.SUBSCRIBED
    )
    consent_at: Mapped[datetime] = mapped_column(default=utcnow)
    consent_method: Mapped[ConsentMethod] = mapped_column(str_enum(ConsentMethod, "consent_method"))
    # Where the consent came from: the import's file name and line, the form's IP, a user.
    consent_source: Mapped[str] = mapped_column(sa.Text, default="")
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # What ended it: "one-click", "preferences", "complaint", a campaign id...
    unsubscribe_source: Mapped[str | None] = mapped_column(sa.Text)

    mailing_list: Mapped[MailingList] = relationship(back_populates="subscriptions")
    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")

    __table_args__ = (
        sa.UniqueConstraint("list_id", "subscriber_id"),
        sa.Index("ix_subscriptions_list_id_status", "list_id", "status"),
    )
