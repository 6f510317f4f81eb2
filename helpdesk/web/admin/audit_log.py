"""The admin index and the audit log."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_login import current_user

from helpdesk import access
from helpdesk.extensions import db
from helpdesk.models import AuditEvent, Committee, Ticket, User
from helpdesk.web.admin import bp
from helpdesk.web.admin.forms import AuditFilterForm

PAGE_SIZE = 50


@bp.route("/")
def index():
    """What the agent may administer."""
    committees = list(db.session.scalars(access.manageable_committees(current_user)))
    return render_template(
        "admin/index.html", committees=committees, site_admin=access.is_site_admin(current_user)
    )


@bp.route("/audit")
def audit():
    """The audit events the agent may read, newest first, filtered and paginated."""
    form = AuditFilterForm(request.args)
    stmt = access.visible_audit_events(current_user)
    if form.validate():
        number = (form.ticket.data or "").strip().lstrip("#")
        if number:
            ticket_ids = sa.select(Ticket.id).where(
                Ticket.number == (int(number) if number.isdigit() else -1)
            )
            stmt = stmt.where(AuditEvent.ticket_id.in_(ticket_ids))
        email = (form.user.data or "").strip().lower()
        if email:
            user_ids = sa.select(User.id).where(User.email == email)
            stmt = stmt.where(
                sa.or_(AuditEvent.actor_id.in_(user_ids), AuditEvent.subject_user_id.in_(user_ids))
            )
        action = (form.action.data or "").strip()
        if action:
            stmt = stmt.where(AuditEvent.action.startswith(action))
    before = request.args.get("before", type=int)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    events = list(db.session.scalars(stmt.limit(PAGE_SIZE + 1)))
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    ticket_ids = {e.ticket_id for e in events if e.ticket_id}
    numbers = (
        dict(
            db.session.execute(
                access.visible_tickets(current_user)
                .with_only_columns(Ticket.id, Ticket.number)
                .where(Ticket.id.in_(ticket_ids))
            ).all()
        )
        if ticket_ids
        else {}
    )
    # Only names the agent may know: a ticket moved out of a private committee keeps that
    # committee's id in its events.
    known = access.visible_committees(current_user).with_only_columns(Committee.id, Committee.name)
    committee_names = dict(db.session.execute(known.order_by(None)).all())
    return render_template(
        "admin/audit.html",
        form=form,
        events=events,
        next_before=events[-1].id if more else None,
        args=args,
        numbers=numbers,
        committee_names=committee_names,
    )
