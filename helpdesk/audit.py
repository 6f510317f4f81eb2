"""Recording audit events (the model is helpdesk.models.audit.AuditEvent)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models import AuditEvent


def record(
    action: str,
    *,
    actor_id: int | None = None,
    ticket_id: int | None = None,
    committee_id: int | None = None,
    subject_user_id: int | None = None,
    **data: Any,
) -> AuditEvent:
    """Add an audit event to the current transaction; it commits with the change it records."""
    event = AuditEvent(
        action=action,
        actor_id=actor_id,
        ticket_id=ticket_id,
        committee_id=committee_id,
        subject_user_id=subject_user_id,
        data=data,
    )
    db.session.add(event)
    return event


def record_now(
    action: str,
    *,
    actor_id: int | None = None,
    ticket_id: int | None = None,
    committee_id: int | None = None,
    subject_user_id: int | None = None,
    **data: Any,
) -> None:
    """Like :func:`record`, written at once with a prebuilt statement rather than with the
    next flush: for busy paths, once the rows the event names are written."""
    db.session.connection().execute(
        _insert(),
        {
            "created_at": utcnow(),
            "action": action,
            "actor_id": actor_id,
            "ticket_id": ticket_id,
            "committee_id": committee_id,
            "subject_user_id": subject_user_id,
            "data": data,
        },
    )


@cache
def _insert() -> sa.Insert:
    return AuditEvent.__table__.insert()
