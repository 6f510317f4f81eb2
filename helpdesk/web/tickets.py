"""Dashboard, queues, search and the ticket page (reading side)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from helpdesk import access, canned, mentions, queues, ticket_page
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.inbound import inbound_admin
from helpdesk.inline_images import SHOWN_TYPES, user_for
from helpdesk.merging import final_ticket
from helpdesk.models import Committee, Ticket, TicketStatus
from helpdesk.storage import attachment_store
from helpdesk.web import listing
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
from helpdesk.web.security import MEDIA_SECURITY_POLICY, content_security_policy

bp = Blueprint("tickets", __name__)


@bp.route("/")
@login_required
def dashboard():
    """My committees with counts, tickets assigned to me, new unassigned tickets, mentions."""
    committees = list(db.session.scalars(access.visible_committees(current_user)))
    readable_ids = set(db.session.scalars(access.readable_committee_ids(current_user)))
    # Closed and solved tickets are not work: counting them would cost the most and say least.
    counts = queues.status_counts(current_user, queues.open_statuses())
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
        mentions=mentions.unread(current_user),
        statuses=queues.open_statuses(),
        mailboxes=inbound_admin.mailboxes() if access.is_site_admin(current_user) else [],
    )


def _ticket_list(committee: Committee | None, *, title: str, default_status: str = "open"):
    query = listing.parse(request.args, current_user, default_status=default_status)
    if committee is not None:
        query.kwargs["committee_id"] = committee.id
    elif query.values["committee"]:
        chosen = queues.committee_by_slug(current_user, query.values["committee"])
        if chosen is None:
            abort(404)
        query.kwargs["committee_id"] = chosen.id
    page = queues.list_tickets(current_user, cursor=request.args.get("cursor"), **query.kwargs)
    return render_template(
        "tickets/queue.html",
        title=title,
        committee=committee,
        page=page,
        values=query.values,
        link_args=listing.link_args,
        status_choices=listing.STATUS_CHOICES,
        sort_choices=listing.SORT_CHOICES,
        colleagues=listing.colleagues(current_user),
        committees=list(db.session.scalars(access.readable_committees(current_user))),
        move_targets=list(db.session.scalars(access.visible_committees(current_user))),
        bulk_form=BulkForm(),
    )


@bp.route("/queues/")
@login_required
def all_queues():
    """Every ticket the agent may see."""
    return _ticket_list(None, title="All tickets")


@bp.route("/queues/<slug>")
@login_required
def queue(slug: str):
    """One committee's queue (404 for committees the agent may not read)."""
    committee = queues.committee_by_slug(current_user, slug)
    if committee is None:
        abort(404)
    return _ticket_list(committee, title=committee.name)


@bp.route("/search")
@login_required
def search():
    """Full-text search of the tickets the agent may see, with the list's filters."""
    return _ticket_list(None, title="Search", default_status="all")


def readable_ticket(number: int) -> Ticket:
    """The ticket a number leads to (a merged ticket's target), if the agent may read it."""
    found = access.visible_ticket(current_user, number)
    if found is None:
        abort(404)
    if found.merged_into_id is not None:
        target = final_ticket(found)
        if not access.can_read_ticket(current_user, target):
            abort(404)
        return target
    return found


def shown_image_ids() -> frozenset[int]:
    """Messages whose remote images the agent asked to see (``?images=ID``)."""
    return frozenset(int(v) for v in request.args.getlist("images") if v.isdigit())


def render_ticket(ticket: Ticket, *, status: int = 200, reply_form=None, note_form=None, **extra):
    """The ticket page (also re-shown with a held or refused reply)."""
    data = ticket_page.build(current_user, ticket, show_images_for=shown_image_ids())
    if reply_form is None:
        reply_form = ReplyForm(
            formdata=None,
            cc=", ".join(data.reply.cc),
            status="pending",
            snapshot=data.snapshot.encode(),
        )
    if "changes" in extra:
        reply_form.snapshot.data = extra["snapshot"].encode()
    page = render_template(
        "tickets/ticket.html",
        page=data,
        ticket=data.ticket,
        reply_form=reply_form,
        note_form=note_form or NoteForm(formdata=None),
        assign_form=AssignForm(formdata=None),
        status_form=StatusForm(formdata=None),
        tags_form=TagsForm(formdata=None, tags=", ".join(ticket.tags)),
        move_form=MoveForm(formdata=None),
        merge_form=MergeForm(formdata=None),
        statuses=list(TicketStatus),
        **extra,
    )
    # Presence and read mentions; after rendering, which a commit would make reload every row.
    db.session.commit()
    if data.showing_images:
        policy = content_security_policy(remote_images=True)
        return page, status, {"Content-Security-Policy": policy}
    return page, status


@bp.route("/tickets/<int:number>")
@login_required
def ticket(number: int):
    """The ticket page: its thread, actions, the contact's other tickets, the audit trail."""
    found = readable_ticket(number)
    if found.number != number:
        return redirect(url_for("tickets.ticket", number=found.number))
    return render_ticket(found)


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


@bp.route("/tickets/<int:number>/inline/<int:attachment_id>")
def inline_image(number: int, attachment_id: int):
    """An inline image of a mail, for the mail's sandboxed frame (signed address, see
    helpdesk.inline_images); only image types that run nothing are served."""
    user = user_for(request.args.get("t", ""), attachment_id)
    found = access.visible_attachment(user, attachment_id) if user is not None else None
    if found is None or found.message.ticket.number != number:
        abort(404)
    if found.content_type not in SHOWN_TYPES:
        abort(404)
    path = attachment_store().path(found.sha256)
    if not path.exists():
        abort(404)
    response = send_file(path, mimetype=found.content_type, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = MEDIA_SECURITY_POLICY
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/tickets/<int:number>/canned/<int:canned_id>")
@login_required
def canned_text(number: int, canned_id: int):
    """A canned reply of the ticket's committee rendered for this ticket (JSON)."""
    found = readable_ticket(number)
    try:
        text = canned.render_for_ticket(canned_id, found.id, current_user.id)
    except NotFound:
        abort(404)
    except ServiceError as error:
        return jsonify(error=error.message), 422
    return jsonify(text=text)
