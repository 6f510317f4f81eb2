"""Exporting tickets as JSON lines, for backups and automation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from helpdesk.extensions import db
from helpdesk.models import Message, Ticket


def ticket_record(ticket: Ticket) -> dict:
    """One ticket with its thread, as exported."""
    return {
        "committee": ticket.committee.slug,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "contact": ticket.contact.email if ticket.contact else None,
        "tags": ticket.tags,
        "created_at": ticket.created_at.isoformat(),
        "messages": [
            {
                "direction": m.direction.value,
                "from": m.from_address,
                "from_name": m.from_name,
                "verified_sender": m.sender_verified,
                "claimed_sender": m.claimed_sender,
                "message_id": m.message_id,
                "classification": m.classification,
                "subject": m.subject,
                "text": m.text,
                "attachments": [a.filename for a in m.attachments],
                "created_at": m.created_at.isoformat(),
            }
            for m in ticket.messages
        ],
    }


def export_lines(batch_size: int = 500) -> Iterator[str]:
    """Every ticket as one JSON line, in number order, read in batches."""
    last = 0
    while True:
        batch = list(
            db.session.scalars(
                sa.select(Ticket)
                .where(Ticket.number > last)
                .order_by(Ticket.number)
                .limit(batch_size)
                .options(
                    selectinload(Ticket.committee),
                    selectinload(Ticket.contact),
                    selectinload(Ticket.tag_rows),
                    selectinload(Ticket.messages).selectinload(Message.attachments),
                )
            )
        )
        if not batch:
            return
        for ticket in batch:
            yield json.dumps(ticket_record(ticket), ensure_ascii=False)
        last = batch[-1].number
        db.session.expunge_all()
