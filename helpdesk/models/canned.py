"""Canned replies: a committee's reusable answers, written as sandboxed Jinja templates."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.database import utcnow
from helpdesk.extensions import db


class CannedReply(db.Model):
    """A reusable answer of one committee; ``body`` is Markdown with Jinja variables.

    Rendered by helpdesk.canned in Jinja's SandboxedEnvironment with plain ``ticket``,
    ``contact`` and ``agent`` values, never ORM objects.
    """

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(
        sa.ForeignKey("committees.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.UniqueConstraint("committee_id", "title"),)
