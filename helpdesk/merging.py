"""Merging two tickets about the same matter into one.

The source ticket's messages (with their attachments and notifications) move to the
target; its participants, tags and recusals join the target's, so nobody recused from the
source reads its messages on the target. The source is closed, linked and keeps its
number, which leads to the target from then on (web pages and mail threading).
"""

from __future__ import annotations

import sqlalchemy as sa

from helpdesk import audit, search_index, tickets
from helpdesk.database import utcnow
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import (
    Message,
    Notification,
    OutboundMessage,
    Ticket,
    TicketLink,
    TicketParticipant,
    TicketRecusal,
    TicketStatus,
)

MAX_CHAIN = 20


def final_ticket(ticket: Ticket) -> Ticket:
    """The ticket a (possibly merged) ticket now lives on."""
    seen = 0
    while ticket.merged_into_id is not None and seen < MAX_CHAIN:
        ticket = tickets.get_ticket(ticket.merged_into_id)
        seen += 1
    return ticket


def merge(source_id: int, target_id: int, *, actor_id: int | None = None) -> Ticket:
    """Merge ticket ``source_id`` into ``target_id``; returns the target."""
    source = tickets.get_ticket(source_id)
    target = tickets.get_ticket(target_id)
    if source.id == target.id:
        raise ServiceError("a ticket cannot be merged into itself", field="target")
    if source.merged_into_id is not None:
        raise ServiceError(f"#{source.number} was merged already", field="target")
    if target.merged_into_id is not None:
        raise ServiceError(
            f"#{target.number} was merged into another ticket; merge into that one",
            field="target",
        )
    for model in (Message, Notification, OutboundMessage):
        db.session.execute(
            sa.update(model)
            .where(model.ticket_id == source.id)
            .values(ticket_id=target.id)
            .execution_options(synchronize_session=False)
        )
    recused = target.recused_user_ids
    for row in source.recusals:
        if row.user_id not in recused:
            target.recusals.append(TicketRecusal(user_id=row.user_id))
    if target.assignee_id is not None and target.assignee_id in {
        r.user_id for r in target.recusals
    }:
        target.assignee_id = None
    known = {p.address for p in target.participants}
    target_contact = target.contact.email_key if target.contact else None
    newcomers = [(p.address, p.name) for p in source.participants]
    if source.contact is not None:
        newcomers.append((source.contact.email_key, source.contact.name))
    for address, name in newcomers:
        if address not in known and address != target_contact:
            target.participants.append(TicketParticipant(address=address, name=name))
            known.add(address)
    for tag in source.tags:
        if tag not in target.tags:
            tickets.add_tags(target.id, [tag], actor_id=actor_id)
    db.session.add_all(
        [
            TicketLink(ticket_id=target.id, linked_number=source.number, kind="merged_from"),
            TicketLink(ticket_id=source.id, linked_number=target.number, kind="merged_into"),
        ]
    )
    source.merged_into_id = target.id
    if source.status is not TicketStatus.CLOSED:
        source.status = TicketStatus.CLOSED
        source.closed_at = utcnow()
    tickets.touch(source)
    tickets.touch(target)
    db.session.flush()
    db.session.expire(source, ["messages"])
    db.session.expire(target, ["messages"])
    search_index.rebuild(source.id)
    search_index.rebuild(target.id)
    audit.record(
        "ticket.merged",
        actor_id=actor_id,
        ticket_id=target.id,
        source_number=source.number,
    )
    audit.record(
        "ticket.merged_into",
        actor_id=actor_id,
        ticket_id=source.id,
        target_number=target.number,
    )
    return target
