"""Bulk actions on tickets chosen in a list: assign, status, tag, untag, move.

All or nothing: every chosen ticket must be one the agent may read (else the whole
request is "not found", as for a single ticket), and a change refused for one ticket
(an assignee who may not read it) refuses the lot.
"""

from __future__ import annotations

import enum
import logging

import sqlalchemy as sa

from helpdesk import access, queues, tickets
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import Ticket, TicketStatus, User

log = logging.getLogger(__name__)

MAX_TICKETS = 200


class BulkAction(enum.StrEnum):
    """What can be done to many tickets at once."""

    ASSIGN = "assign"
    STATUS = "status"
    TAG = "tag"
    UNTAG = "untag"
    MOVE = "move"


def apply(user_id: int, numbers: list[int], action: BulkAction | str, value: str) -> int:
    """Apply one action to the tickets with public ``numbers``; returns how many changed."""
    user = db.session.get(User, user_id)
    if user is None or not access.is_agent(user):
        raise NotFound("no such agent")
    wanted = set(numbers)
    if not wanted:
        raise ServiceError("choose at least one ticket", field="tickets")
    if len(wanted) > MAX_TICKETS:
        raise ServiceError(f"at most {MAX_TICKETS} tickets at once", field="tickets")
    try:
        action = BulkAction(action)
    except ValueError:
        raise ServiceError("choose an action", field="action") from None
    found = list(
        db.session.scalars(
            access.visible_tickets(user).where(Ticket.number.in_(wanted)).order_by(Ticket.id)
        )
    )
    if len(found) != len(wanted):
        raise NotFound("no such ticket")
    committee_id = None
    if action is BulkAction.MOVE:
        target = queues.known_committee_by_slug(user, value)
        if target is None:
            raise ServiceError("choose a committee", field="value")
        committee_id = target.id
    if action is BulkAction.STATUS:
        try:
            status = TicketStatus(value)
        except ValueError:
            raise ServiceError("choose a status", field="value") from None
    before = {t.id: t.version for t in found}
    for ticket in found:
        if action is BulkAction.ASSIGN:
            tickets.assign(ticket.id, tickets.assignee_choice(value, user.id), actor_id=user.id)
        elif action is BulkAction.STATUS:
            tickets.set_status(ticket.id, status, actor_id=user.id)
        elif action is BulkAction.TAG:
            tickets.add_tags(ticket.id, [value], actor_id=user.id)
        elif action is BulkAction.UNTAG:
            tickets.remove_tags(ticket.id, [value], actor_id=user.id)
        else:
            assert committee_id is not None
            tickets.move(ticket.id, committee_id, actor_id=user.id)
    db.session.flush()
    after = dict(
        db.session.execute(
            sa.select(Ticket.id, Ticket.version).where(Ticket.id.in_(list(before)))
        ).all()
    )
    changed = sum(1 for ticket_id, version in before.items() if after[ticket_id] != version)
    log.info(
        "bulk %s by agent %s: %d of %d ticket(s) changed", action, user.id, changed, len(found)
    )
    return changed
