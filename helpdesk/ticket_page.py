"""Everything the ticket page shows, gathered for one agent (always through helpdesk.access)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from helpdesk import access, canned, collisions, mentions, presence, queues, replies
from helpdesk.collisions import Snapshot
from helpdesk.extensions import db
from helpdesk.models import AuditEvent, CannedReply, Committee, Ticket, TicketLink, User
from helpdesk.thread_view import MessageView, thread


@dataclass
class TicketPageData:
    """The ticket page's content."""

    ticket: Ticket
    committee: Committee
    thread: list[MessageView]
    events: list[AuditEvent]
    committee_names: dict[int, str]
    links: list[TicketLink]
    contact_tickets: list[Ticket]
    readers: list[User]
    move_targets: list[Committee]
    canned_replies: list[CannedReply]
    reply: replies.ReplyDefaults
    snapshot: Snapshot
    viewers: list[User]
    previous_number: int | None
    next_number: int | None
    showing_images: bool
    ping_seconds: int = presence.PING_SECONDS


def build(user: User, ticket: Ticket, *, show_images_for: frozenset[int]) -> TicketPageData:
    """Gather the page; marks the agent as viewing it and their mentions on it as read."""
    committee = db.session.get(Committee, ticket.committee_id)
    events = list(
        db.session.scalars(
            access.visible_audit_events(user).where(AuditEvent.ticket_id == ticket.id)
        )
    )
    # Committee names for moved tickets' history: only those the agent may know exist.
    known = list(db.session.scalars(access.visible_committees(user)))
    links = list(
        db.session.scalars(
            sa.select(TicketLink).where(TicketLink.ticket_id == ticket.id).order_by(TicketLink.id)
        )
    )
    previous_number, next_number = queues.neighbours(user, ticket)
    views = thread(ticket, user, show_images_for=show_images_for)
    mentions.mark_read(user.id, ticket.id)
    return TicketPageData(
        ticket=ticket,
        committee=committee,
        thread=views,
        events=events,
        committee_names={c.id: c.name for c in known},
        links=links,
        contact_tickets=queues.contact_tickets(user, ticket),
        readers=list(db.session.scalars(access.ticket_readers(ticket))),
        move_targets=[c for c in known if c.id != committee.id],
        canned_replies=canned.for_committee(committee.id),
        reply=replies.reply_defaults(ticket.id),
        snapshot=collisions.snapshot_of(ticket.id),
        viewers=presence.seen(ticket.id, user.id),
        previous_number=previous_number,
        next_number=next_number,
        showing_images=any(v.showing_images for v in views),
    )
