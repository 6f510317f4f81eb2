"""Organiser pages: mailing lists, their subscribers, CSV import/export, suppressions.

Who sees which list is decided by helpdesk.access (visible_lists): a list the user may not
organise answers 404, exactly like a missing one.
"""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from helpdesk import access
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import MailingList, SubscriptionStatus, SuppressionReason
from helpdesk.outbound import audience, suppressions
from helpdesk.outbound.subscriber_export import export_csv
from helpdesk.outbound.subscriber_import import import_csv
from helpdesk.web.audience_forms import (
    AddSubscriberForm,
    ImportForm,
    NewListForm,
    RemoveSuppressionForm,
    SuppressionForm,
)

bp = Blueprint("audience", __name__, url_prefix="/outbound")

PER_PAGE = 50


def _list_or_404(slug: str) -> MailingList:
    found = access.visible_list(current_user, slug)
    if found is None:
        abort(404)
    return found


def _page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(400, "page must be a number")


@bp.route("/lists")
@login_required
def lists():
    """The lists the user may organise, with their subscriber counts."""
    visible = list(db.session.scalars(access.visible_lists(current_user)))
    counts = audience.list_counts([m.id for m in visible])
    can_create = db.session.scalar(access.list_owner_committees(current_user).limit(1)) is not None
    return render_template(
        "outbound/lists.html", lists=visible, counts=counts, can_create=can_create
    )


@bp.route("/lists/new", methods=["GET", "POST"])
@login_required
def new_list():
    """Create a list for one of the user's committees."""
    owners = list(db.session.scalars(access.list_owner_committees(current_user)))
    if not owners:
        abort(404)
    form = NewListForm()
    form.committee.choices = [(c.slug, c.name) for c in owners]
    status = 200
    if form.validate_on_submit():
        try:
            created = audience.add_list(
                form.slug.data or "",
                committee=form.committee.data or "",
                name=form.name.data or "",
                double_opt_in=form.double_opt_in.data,
                public=form.public.data,
                description=form.description.data or "",
                actor_id=current_user.id,
            )
            db.session.commit()
        except ServiceError as error:
            db.session.rollback()
            getattr(form, error.field or "slug", form.slug).errors.append(error.message)
            status = 400
        else:
            flash(f"List {created.name} created.", "success")
            return redirect(url_for("audience.list_page", slug=created.slug))
    elif request.method == "POST":
        status = 400
    return render_template("outbound/list_new.html", form=form), status


def _render_list(mailing_list: MailingList, *, report=None, add_form=None, status: int = 200):
    query = request.args.get("q", "").strip()[:200]
    wanted = request.args.get("status", "").strip()
    if wanted and wanted not in {s.value for s in SubscriptionStatus}:
        abort(400, "unknown status")
    page = audience.search_subscribers(
        mailing_list.id, query, wanted, page=_page_arg(), per_page=PER_PAGE
    )
    return render_template(
        "outbound/list.html",
        mailing_list=mailing_list,
        counts=audience.list_counts([mailing_list.id])[mailing_list.id],
        page=page,
        q=query,
        status=wanted,
        statuses=[s.value for s in SubscriptionStatus],
        add_form=add_form or AddSubscriberForm(formdata=None),
        import_form=ImportForm(formdata=None),
        report=report,
    ), status


@bp.route("/lists/<slug>")
@login_required
def list_page(slug: str):
    """A list's subscribers (search, status filter, pages), with add, import and export."""
    return _render_list(_list_or_404(slug))


@bp.route("/lists/<slug>/subscribers", methods=["POST"])
@login_required
def add_subscriber(slug: str):
    """Add a subscriber by hand."""
    mailing_list = _list_or_404(slug)
    form = AddSubscriberForm()
    if not form.validate_on_submit():
        return _render_list(mailing_list, add_form=form, status=400)
    try:
        audience.add_by_hand(
            mailing_list.id,
            form.email.data or "",
            name=form.name.data or "",
            language=form.language.data or "",
            actor_id=current_user.id,
        )
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        getattr(form, error.field or "email", form.email).errors.append(error.message)
        return _render_list(mailing_list, add_form=form, status=400)
    flash(f"{form.email.data} is subscribed.", "success")
    return redirect(url_for("audience.list_page", slug=slug))


@bp.route("/lists/<slug>/import", methods=["POST"])
@login_required
def import_subscribers(slug: str):
    """Import an uploaded CSV; the page shows the report of every row not imported."""
    mailing_list = _list_or_404(slug)
    form = ImportForm()
    if not form.validate_on_submit():
        flash("Choose a CSV file to upload.", "danger")
        return _render_list(mailing_list, status=400)
    upload = form.file.data
    name = (upload.filename or "upload.csv").rsplit("/", 1)[-1][:100]
    try:
        report = import_csv(mailing_list.id, upload.read(), name)
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        flash(f"{name}: {error.message}", "danger")
        return _render_list(mailing_list, status=400)
    return _render_list(mailing_list, report=report)


@bp.route("/lists/<slug>/export.csv")
@login_required
def export_subscribers(slug: str):
    """Download the list's subscribers as CSV."""
    mailing_list = _list_or_404(slug)
    out = io.StringIO()
    export_csv(mailing_list.id, out)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{mailing_list.slug}.csv"'},
    )


# -- suppressions -----------------------------------------------------------------------------


def _require_suppression_access() -> None:
    if not access.can_manage_suppressions(current_user):
        abort(404)


def _render_suppressions(form: SuppressionForm | None = None, status: int = 200):
    query = request.args.get("q", "").strip()[:200]
    reason = request.args.get("reason", "").strip()
    if reason and reason not in {r.value for r in SuppressionReason}:
        abort(400, "unknown reason")
    page = _page_arg()
    rows, total = suppressions.search_suppressions(query, reason, page=page, per_page=PER_PAGE)
    return render_template(
        "outbound/suppressions.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        q=query,
        reason=reason,
        reasons=[r.value for r in SuppressionReason],
        form=form or SuppressionForm(formdata=None),
        remove_form=RemoveSuppressionForm(formdata=None),
    ), status


@bp.route("/suppressions")
@login_required
def suppression_list():
    """The global suppression list."""
    _require_suppression_access()
    return _render_suppressions()


@bp.route("/suppressions", methods=["POST"])
@login_required
def add_suppression():
    """Suppress an address by hand (audited)."""
    _require_suppression_access()
    form = SuppressionForm()
    if not form.validate_on_submit():
        return _render_suppressions(form, 400)
    try:
        suppressions.add_manual(
            form.address.data or "", form.note.data or "", actor_id=current_user.id
        )
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        form.address.errors.append(error.message)
        return _render_suppressions(form, 400)
    flash(f"{form.address.data} is suppressed.", "success")
    return redirect(url_for("audience.suppression_list"))


@bp.route("/suppressions/<int:suppression_id>/remove", methods=["POST"])
@login_required
def remove_suppression(suppression_id: int):
    """Lift a manual suppression (audited)."""
    _require_suppression_access()
    if not RemoveSuppressionForm().validate_on_submit():
        abort(400)
    try:
        address = suppressions.remove_manual(suppression_id, actor_id=current_user.id)
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        if error.field is None:
            abort(404)
        flash(error.message, "danger")
        return _render_suppressions(status=400)
    flash(f"{address} is no longer suppressed.", "success")
    return redirect(url_for("audience.suppression_list"))
