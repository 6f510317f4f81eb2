"""Ticket API: the same visibility rules as the web pages."""

from __future__ import annotations

from flask import jsonify, request

from helpdesk import access, queues
from helpdesk.api import bp
from helpdesk.api.auth import api_error, api_user, token_required
from helpdesk.models import Message, Ticket, TicketStatus


def ticket_json(ticket: Ticket) -> dict:
    """The list representation of a ticket."""
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "committee": ticket.committee.slug,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "assignee": ticket.assignee.email if ticket.assignee else None,
        "contact": ticket.contact.email if ticket.contact else None,
        "tags": ticket.tags,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def message_json(message: Message) -> dict:
    """A message of a ticket's thread."""
    return {
        "id": message.id,
        "direction": message.direction.value,
        "message_id": message.message_id,
        "from": message.from_address,
        "from_name": message.from_name,
        "to": message.to_addresses,
        "cc": message.cc_addresses,
        "subject": message.subject,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments
        ],
    }


@bp.get("/tickets")
@token_required
def list_tickets():
    """Tickets the token's agent may see, newest activity first; ``?cursor=`` pages on."""
    status = request.args.get("status")
    statuses = None
    if status:
        try:
            statuses = (TicketStatus(status),)
        except ValueError:
            return api_error(
                400,
                "invalid",
                f"status must be one of {', '.join(s.value for s in TicketStatus)}",
                field="status",
            )
    committee_id = None
    if slug := request.args.get("committee"):
        committee = queues.committee_by_slug(api_user(), slug)
        if committee is None:
            return api_error(404, "not found", "no such committee, or it is not yours to see")
        committee_id = committee.id
    page = queues.list_tickets(
        api_user(),
        statuses=statuses,
        committee_id=committee_id,
        cursor=request.args.get("cursor"),
    )
    return jsonify(tickets=[ticket_json(t) for t in page.tickets], next_cursor=page.next_cursor)


@bp.get("/tickets/<int:number>")
@token_required
def get_ticket(number: int):
    """One ticket with its messages."""
    ticket = access.visible_ticket(api_user(), number)
    if ticket is None:
        return api_error(404, "not found", "no such ticket, or it is not yours to see")
    body = ticket_json(ticket)
    body["messages"] = [message_json(m) for m in ticket.messages]
    return jsonify(body)
