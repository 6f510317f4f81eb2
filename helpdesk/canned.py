"""Canned replies: a committee's reusable answers, rendered for one ticket in the sandbox.

Bodies are Markdown with Jinja variables, rendered by helpdesk.outbound.render (Jinja's
SandboxedEnvironment, undefined variables are errors). The context holds plain values
only: an ORM object would let a template walk from the ticket to agents' rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from helpdesk import audit, tickets
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import CannedReply, Committee, User
from helpdesk.outbound.render import TemplateProblem, render_string

MAX_TITLE = 200
MAX_BODY = 20_000

# Sample values used to check that a template renders before it is saved.
_SAMPLE = {
    "ticket": {"number": 1, "subject": "Subject", "status": "open", "committee": "Committee"},
    "contact": {"name": "Ada Lovelace", "first_name": "Ada", "email": "ada@example.org"},
    "agent": {"name": "Agent", "first_name": "Agent"},
}


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else ""


def template_context(ticket_id: int, agent_id: int) -> dict[str, Any]:
    """The variables a canned reply sees: ``ticket``, ``contact`` and ``agent``."""
    ticket = tickets.get_ticket(ticket_id)
    committee = db.session.get(Committee, ticket.committee_id)
    agent = db.session.get(User, agent_id)
    contact = ticket.contact
    return {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status.value,
            "committee": committee.name,
        },
        "contact": {
            "name": contact.name if contact else "",
            "first_name": _first_name(contact.name) if contact else "",
            "email": contact.email if contact else "",
        },
        "agent": {
            "name": agent.name if agent else "",
            "first_name": _first_name(agent.name) if agent else "",
        },
    }


def _check(title: str, body: str) -> tuple[str, str]:
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise ServiceError(f"a title has 1 to {MAX_TITLE} characters", field="title")
    if not body.strip() or len(body) > MAX_BODY:
        raise ServiceError(f"a text has 1 to {MAX_BODY} characters", field="body")
    try:
        render_string(body, _SAMPLE)
    except TemplateProblem as problem:
        raise ServiceError(f"the text does not render: {problem}", field="body") from problem
    return title, body


def for_committee(committee_id: int) -> list[CannedReply]:
    """A committee's canned replies by title."""
    return list(
        db.session.scalars(
            sa.select(CannedReply)
            .where(CannedReply.committee_id == committee_id)
            .order_by(CannedReply.title)
        )
    )


def create(committee_id: int, title: str, body: str, *, actor_id: int | None = None) -> CannedReply:
    """Add a canned reply to a committee (its text must render)."""
    if db.session.get(Committee, committee_id) is None:
        raise NotFound("no such committee", field="committee")
    title, body = _check(title, body)
    exists = db.session.scalar(
        sa.select(CannedReply.id).where(
            CannedReply.committee_id == committee_id, CannedReply.title == title
        )
    )
    if exists is not None:
        raise ServiceError(f"a canned reply {title!r} exists already", field="title")
    row = CannedReply(committee_id=committee_id, title=title, body=body, created_by_id=actor_id)
    db.session.add(row)
    db.session.flush()
    audit.record("canned_reply.created", actor_id=actor_id, committee_id=committee_id, title=title)
    return row


def update(canned_id: int, title: str, body: str, *, actor_id: int | None = None) -> CannedReply:
    """Change a canned reply's title and text."""
    row = db.session.get(CannedReply, canned_id)
    if row is None:
        raise NotFound("no such canned reply")
    row.title, row.body = _check(title, body)
    db.session.flush()
    audit.record(
        "canned_reply.updated", actor_id=actor_id, committee_id=row.committee_id, title=row.title
    )
    return row


def delete(canned_id: int, *, actor_id: int | None = None) -> None:
    """Remove a canned reply."""
    row = db.session.get(CannedReply, canned_id)
    if row is None:
        raise NotFound("no such canned reply")
    audit.record(
        "canned_reply.deleted", actor_id=actor_id, committee_id=row.committee_id, title=row.title
    )
    db.session.delete(row)
    db.session.flush()


def render_for_ticket(canned_id: int, ticket_id: int, agent_id: int) -> str:
    """A canned reply of the ticket's committee, rendered for that ticket and agent."""
    ticket = tickets.get_ticket(ticket_id)
    row = db.session.get(CannedReply, canned_id)
    if row is None or row.committee_id != ticket.committee_id:
        raise NotFound("no such canned reply")
    try:
        return render_string(row.body, template_context(ticket_id, agent_id))
    except TemplateProblem as problem:
        raise ServiceError(f"the canned reply does not render: {problem}") from problem
