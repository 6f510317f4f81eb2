"""Notifications for agents (an @mention in a note), waiting to be shown and delivered."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import str_enum, utcnow
from helpdesk.extensions import db
from helpdesk.models.tickets import Ticket
from helpdesk.models.users import User


class NotificationKind(enum.StrEnum):
    """What a notification is about."""

    MENTION = "mention"


class Notification(db.Model):
    """Something an agent should hear about, concerning one ticket.

    Written in the transaction of the change it reports. Whoever delivers it (the
    dashboard, e-mail, Discord) sets ``delivered_at``; the agent reading it sets
    ``read_at``. Delivery must still go through helpdesk.access.visible_notifications:
    the agent may have lost access to the ticket since.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(str_enum(NotificationKind, "notification_kind"))
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    # The note that mentioned the agent.
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    ticket: Mapped[Ticket] = relationship()

    __table_args__ = (sa.Index("ix_notifications_user_unread", "user_id", "read_at"),)
