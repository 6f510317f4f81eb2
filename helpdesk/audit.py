"""Recording audit events (the model is helpdesk.models.audit.AuditEvent)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import AuditEvent


def record(action: str, **fields: Any) -> AuditEvent:
    """Add an audit event (``fields`` as for :func:`_columns`) to the current
    transaction; it commits with the change it records."""
    event = AuditEvent(**_columns(action, **fields))
    db.session.add(event)
    return event


def record_now(action: str, **fields: Any) -> None:
    """Like :func:`record`, written at once with a prebuilt statement rather than with the
    next flush: for busy paths, once the rows the event names are written."""
    db.session.connection().execute(_insert(), _columns(action, **fields))


def _columns(
    action: str,
    *,
    actor_id: int | None = None,
    ticket_id: int | None = None,
    committee_id: int | None = None,
    subject_user_id: int | None = None,
    **data: Any,
) -> dict[str, Any]:
    """An event's columns: who did it, to which ticket, committee or user; the rest is
    its data."""
    return {
        "action": action,
        "actor_id": actor_id,
        "ticket_id": ticket_id,
        "committee_id": committee_id,
        "subject_user_id": subject_user_id,
        "data": data,
    }


@cache
def _insert() -> sa.Insert:
    return AuditEvent.__table__.insert()
