"""Who else has a ticket open: a light, best-effort presence.

A ticket page reports its viewer when it is rendered and, with JavaScript, every
PING_SECONDS after. Viewers seen within WINDOW are present. With HELPDESK_REDIS_URL
the marks live in Redis (one sorted set per ticket, expiring); otherwise in the
ticket_viewers table. Presence only informs: the send-time check in helpdesk.collisions
is what keeps two agents from sending conflicting answers.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from helpdesk import access, tickets
from helpdesk.database import upsert, utcnow
from helpdesk.extensions import db
from helpdesk.jobs import redis_connection
from helpdesk.models import TicketViewer, User

log = logging.getLogger(__name__)

PING_SECONDS = 20
WINDOW = timedelta(seconds=50)
# Database marks older than this are deleted as new ones are written.
KEEP = timedelta(days=1)


def _key(ticket_id: int) -> str:
    return f"helpdesk:presence:{ticket_id}"


def _redis_seen(ticket_id: int, user_id: int) -> list[int]:
    client = redis_connection()
    now = time.time()
    key = _key(ticket_id)
    with client.pipeline() as pipe:
        pipe.zadd(key, {str(user_id): now})
        pipe.zremrangebyscore(key, "-inf", now - WINDOW.total_seconds())
        pipe.expire(key, int(WINDOW.total_seconds() * 2))
        pipe.zrange(key, 0, -1)
        members = pipe.execute()[-1]
    return [int(m) for m in members]


def _database_seen(ticket_id: int, user_id: int) -> list[int]:
    now = utcnow()
    db.session.execute(
        upsert(db.session, TicketViewer)
        .values(ticket_id=ticket_id, user_id=user_id, seen_at=now)
        .on_conflict_do_update(
            index_elements=[TicketViewer.ticket_id, TicketViewer.user_id],
            set_={"seen_at": now},
        )
    )
    db.session.execute(sa.delete(TicketViewer).where(TicketViewer.seen_at < now - KEEP))
    return list(
        db.session.scalars(
            sa.select(TicketViewer.user_id).where(
                TicketViewer.ticket_id == ticket_id, TicketViewer.seen_at >= now - WINDOW
            )
        )
    )


def seen(ticket_id: int, user_id: int) -> list[User]:
    """Mark the agent as viewing the ticket; return the other agents viewing it.

    Only agents who may still read the ticket are returned.
    """
    viewer_ids: list[int] | None = None
    if current_app.config.get("HELPDESK_REDIS_URL"):
        try:
            viewer_ids = _redis_seen(ticket_id, user_id)
        except RedisError as error:
            # Presence is a courtesy: without Redis the database keeps it.
            log.warning("presence falls back to the database: %s", error)
    if viewer_ids is None:
        viewer_ids = _database_seen(ticket_id, user_id)
    others = [i for i in viewer_ids if i != user_id]
    if not others:
        return []
    ticket = tickets.get_ticket(ticket_id)
    return list(db.session.scalars(access.ticket_readers(ticket).where(User.id.in_(others))))
