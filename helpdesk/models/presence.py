"""Who has a ticket open right now (the database store of helpdesk.presence)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.database import utcnow
from helpdesk.extensions import db


class TicketViewer(db.Model):
    """An agent seen on a ticket's page at ``seen_at``; stale rows mean nothing."""

    __tablename__ = "ticket_viewers"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
