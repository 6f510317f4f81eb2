"""The full-text search document of each ticket (indexed by helpdesk.search_index)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.extensions import db


class TicketSearchDocument(db.Model):
    """Subject, contact and every message text of a ticket, as one searchable text.

    PostgreSQL keeps ``to_tsvector('simple', document)`` in a generated column,
    ``search_vector``, indexed with GIN; SQLite mirrors the table into the FTS5 table
    ``ticket_search_fts`` by triggers. Both are created by the migration, not by the
    metadata (see migrations/env.py).
    """

    __tablename__ = "ticket_search"

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[str] = mapped_column(sa.Text, default="")
