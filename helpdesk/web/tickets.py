"""Dashboard, queues, search and the ticket page (reading side)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, send_file
from flask_login import current_user, login_required

from helpdesk import access, queues
from helpdesk.extensions import db
from helpdesk.models import AuditEvent, Committee, TicketStatus
from helpdesk.storage import attachment_store

bp = Blueprint("tickets", __name__)


def _statuses_arg() -> tuple[TicketStatus, ...] | None:
    raw = request.args.get("status", "open")
    if raw == "all":
        return None
    if raw == "open":
        return queues.open_statuses()
    try:
        return (TicketStatus(raw),)
    except ValueError:
        abort(400, "unknown status")


@bp.route("/")
@login_required
def dashboard():
    """My committees with counts, tickets assigned to me, new unassigned tickets."""
    committees = list(db.session.scalars(access.visible_committees(current_user)))
    readable_ids = set(db.session.scalars(access.readable_committee_ids(current_user)))
    counts = queues.status_counts(current_user)
    mine = queues.list_tickets(
        current_user, assignee_id=current_user.id, statuses=queues.open_statuses(), limit=20
    )
    unassigned = queues.list_tickets(
        current_user, unassigned=True, statuses=(TicketStatus.NEW,), limit=20
    )
    return render_template(
        "tickets/dashboard.html",
        committees=committees,
        readable_ids=readable_ids,
        counts=counts,
        mine=mine.tickets,
        unassigned=unassigned.tickets,
        statuses=list(TicketStatus),
    )


@bp.route("/queues/")
@login_required
def all_queues():
    """Every ticket the agent may see."""
    page = queues.list_tickets(
        current_user, statuses=_statuses_arg(), cursor=request.args.get("cursor")
    )
    return render_template("tickets/queue.html", committee=None, page=page)


@bp.route("/queues/<slug>")
@login_required
def queue(slug: str):
    """One committee's queue (404 for committees the agent may not read)."""
    committee = queues.committee_by_slug(current_user, slug)
    if committee is None:
        abort(404)
    page = queues.list_tickets(
        current_user,
        committee_id=committee.id,
        statuses=_statuses_arg(),
        cursor=request.args.get("cursor"),
    )
    return render_template("tickets/queue.html", committee=committee, page=page)


@bp.route("/search")
@login_required
def search():
    """Search subjects, bodies and contacts of the tickets the agent may see."""
    q = request.args.get("q", "").strip()
    page = (
        queues.list_tickets(current_user, query=q, statuses=None, cursor=request.args.get("cursor"))
        if q
        else None
    )
    return render_template("tickets/search.html", q=q, page=page)


@bp.route("/tickets/<int:number>")
@login_required
def ticket(number: int):
    """The ticket page: its thread, attachments and audit trail."""
    found = access.visible_ticket(current_user, number)
    if found is None:
        abort(404)
    events = list(
        db.session.scalars(
            access.visible_audit_events(current_user).where(AuditEvent.ticket_id == found.id)
        )
    )
    committee = db.session.get(Committee, found.committee_id)
    return render_template("tickets/ticket.html", ticket=found, committee=committee, events=events)


@bp.route("/tickets/<int:number>/attachments/<int:attachment_id>")
@login_required
def attachment(number: int, attachment_id: int):
    """Download an attachment; always as a download, never rendered by the browser."""
    found = access.visible_attachment(current_user, attachment_id)
    if found is None or found.message.ticket.number != number:
        abort(404)
    path = attachment_store().path(found.sha256)
    if not path.exists():
        abort(404)
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=found.filename,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
