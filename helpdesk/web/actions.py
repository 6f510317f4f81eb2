"""What agents do to tickets: reply, note, assign, status, tags, move, merge, bulk, presence.

Each view parses the form, calls one service and commits once. Tickets the agent may not
read answer 404, like missing ones, before any input is looked at.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from helpdesk import (
    access,
    bulk,
    canned,
    collisions,
    mentions,
    merging,
    presence,
    queues,
    replies,
    tickets,
)
from helpdesk.collisions import Collision, Snapshot
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import TicketStatus
from helpdesk.web.auth import safe_next
from helpdesk.web.forms import (
    AssignForm,
    BulkForm,
    MergeForm,
    MoveForm,
    NoteForm,
    ReplyForm,
    StatusForm,
    TagsForm,
)
from helpdesk.web.tickets import readable_ticket, render_ticket

bp = Blueprint("actions", __name__)


def _back(number: int, anchor: str | None = None):
    return redirect(url_for("tickets.ticket", number=number, _anchor=anchor))


def _refused(number: int, error: ServiceError):
    db.session.rollback()
    flash(error.message, "danger")
    return _back(number)


@bp.post("/tickets/<int:number>/reply")
@login_required
def reply(number: int):
    """Send a reply (held when somebody else changed the ticket meanwhile), preview it, or
    insert a canned reply into it."""
    ticket = readable_ticket(number)
    form = ReplyForm()
    if not form.validate_on_submit():
        return render_ticket(ticket, status=400, reply_form=form, reply_error="Check the form.")
    body = form.body.data or ""
    if form.insert_canned.data:
        if not (form.canned.data or "").isdigit():
            return render_ticket(ticket, status=400, reply_form=form, reply_error="Choose one.")
        try:
            text = canned.render_for_ticket(int(form.canned.data), ticket.id, current_user.id)
        except NotFound:
            abort(404)
        except ServiceError as error:
            return render_ticket(ticket, status=400, reply_form=form, reply_error=error.message)
        form.body.data = f"{body.rstrip()}\n\n{text}".lstrip() if body.strip() else text
        return render_ticket(ticket, reply_form=form)
    if form.preview.data:
        return render_ticket(ticket, reply_form=form, preview=replies.render_markdown(body))
    try:
        status = TicketStatus(form.status.data) if form.status.data else None
        message = replies.send_reply(
            ticket.id,
            current_user.id,
            body,
            cc=replies.parse_cc(form.cc.data or ""),
            snapshot=Snapshot.decode(form.snapshot.data),
            status=status,
        )
    except Collision as held:
        db.session.rollback()
        return render_ticket(
            ticket, status=409, reply_form=form, changes=held.changes, snapshot=held.snapshot
        )
    except (ServiceError, ValueError) as error:
        db.session.rollback()
        reason = error.message if isinstance(error, ServiceError) else "Choose a status."
        return render_ticket(ticket, status=400, reply_form=form, reply_error=reason)
    db.session.commit()
    flash("Reply sent.", "success")
    return _back(ticket.number, f"message-{message.id}")


@bp.post("/tickets/<int:number>/note")
@login_required
def note(number: int):
    """Add an internal note (never mailed); @mentions notify colleagues who may read it."""
    ticket = readable_ticket(number)
    form = NoteForm()
    if not form.validate_on_submit():
        return render_ticket(ticket, status=400, note_form=form, note_error="A note needs text.")
    try:
        result = mentions.add_note(ticket.id, current_user.id, form.text.data or "")
    except ServiceError as error:
        db.session.rollback()
        return render_ticket(ticket, status=400, note_form=form, note_error=error.message)
    db.session.commit()
    flash("Note added.", "success")
    if result.notified:
        flash("Notified: " + ", ".join(u.name for u in result.notified) + ".", "info")
    if result.unknown:
        names = ", ".join("@" + n for n in result.unknown)
        flash(f"Nobody who can read this ticket is called {names}: not notified.", "warning")
    return _back(ticket.number, f"message-{result.note.id}")


@bp.post("/tickets/<int:number>/assign")
@login_required
def assign(number: int):
    """Assign the ticket to an agent who may read it, to me, or to nobody."""
    ticket = readable_ticket(number)
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        assignee_id = tickets.assignee_choice(form.assignee.data or "", current_user.id)
        tickets.assign(ticket.id, assignee_id, actor_id=current_user.id)
    except ServiceError as error:
        return _refused(ticket.number, error)
    db.session.commit()
    return _back(ticket.number)


@bp.post("/tickets/<int:number>/status")
@login_required
def status(number: int):
    """Change the ticket's status."""
    ticket = readable_ticket(number)
    form = StatusForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        tickets.set_status(ticket.id, TicketStatus(form.status.data), actor_id=current_user.id)
    except ValueError:
        abort(400)
    db.session.commit()
    return _back(ticket.number)


@bp.post("/tickets/<int:number>/tags")
@login_required
def tags(number: int):
    """Replace the ticket's tags."""
    ticket = readable_ticket(number)
    form = TagsForm()
    if not form.validate_on_submit():
        abort(400)
    wanted = [t for t in (form.tags.data or "").split(",") if t.strip()]
    try:
        tickets.set_tags(ticket.id, wanted, actor_id=current_user.id)
    except ServiceError as error:
        return _refused(ticket.number, error)
    db.session.commit()
    return _back(ticket.number)


@bp.post("/tickets/<int:number>/move")
@login_required
def move(number: int):
    """Move the ticket to another committee the agent knows of."""
    ticket = readable_ticket(number)
    form = MoveForm()
    if not form.validate_on_submit():
        abort(400)
    target = queues.known_committee_by_slug(current_user, form.committee.data or "")
    if target is None:
        return _refused(ticket.number, ServiceError("Choose a committee."))
    tickets.move(ticket.id, target.id, actor_id=current_user.id)
    db.session.commit()
    flash(f"Moved to {target.name}.", "success")
    if not access.can_read_ticket(current_user, ticket):
        return redirect(url_for("tickets.dashboard"))
    return _back(ticket.number)


@bp.post("/tickets/<int:number>/merge")
@login_required
def merge(number: int):
    """Merge this ticket into another (both readable); asks for confirmation first."""
    source = readable_ticket(number)
    form = MergeForm()
    if not form.validate_on_submit():
        return _refused(source.number, ServiceError("Give the number of the other ticket."))
    target = readable_ticket(form.target.data)
    if form.confirm.data != "yes":
        return render_template(
            "tickets/merge_confirm.html", source=source, target=target, form=form
        )
    try:
        merging.merge(source.id, target.id, actor_id=current_user.id)
    except ServiceError as error:
        return _refused(source.number, error)
    db.session.commit()
    flash(f"#{source.number} was merged into this ticket.", "success")
    return _back(target.number)


@bp.post("/tickets/<int:number>/presence")
@login_required
def ping(number: int):
    """Mark the agent as viewing; answer who else is and whether the ticket changed."""
    ticket = readable_ticket(number)
    viewers = presence.seen(ticket.id, current_user.id)
    loaded = Snapshot.decode(request.form.get("snapshot"))
    changes = collisions.changes_since(ticket.id, loaded, user_id=current_user.id) if loaded else []
    db.session.commit()
    return jsonify(
        viewers=[u.name for u in viewers],
        changes=[f"{c.who} {c.what}" for c in changes],
    )


@bp.post("/tickets/bulk")
@login_required
def bulk_action():
    """Apply one action to the tickets ticked in a list."""
    form = BulkForm()
    back = safe_next(form.next.data)
    if not form.validate_on_submit():
        flash("Choose an action.", "danger")
        return redirect(back)
    numbers = [int(n) for n in request.form.getlist("ticket") if n.isdigit()]
    try:
        changed = bulk.apply(current_user.id, numbers, form.action.data, form.value())
    except NotFound:
        abort(404)
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(back)
    db.session.commit()
    flash(f"{changed} ticket(s) changed.", "success")
    return redirect(back)
