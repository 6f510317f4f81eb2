"""Admin pages of committees: settings (site admins), members and canned replies (leads too)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from helpdesk import access, canned, committees, notifications
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import CannedReply, Committee, Membership, User
from helpdesk.web.admin import bp, managed_or_404, require_site_admin, show_error
from helpdesk.web.admin.forms import ActionForm, CannedForm, CommitteeForm, MemberForm, RoleForm


@bp.route("/committees")
def committee_list():
    """The committees the agent manages."""
    rows = list(db.session.scalars(access.manageable_committees(current_user)))
    return render_template(
        "admin/committees.html",
        committees=rows,
        site_admin=access.is_site_admin(current_user),
    )


def _addresses(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@bp.route("/committees/new", methods=["GET", "POST"])
def committee_new():
    """Create a committee (site admins)."""
    require_site_admin()
    form = CommitteeForm()
    if request.method == "GET":
        form.acknowledge.data = True
    if form.validate_on_submit():
        try:
            committee = committees.add_committee(
                form.slug.data or "",
                form.name.data or "",
                mail_addresses=_addresses(form.addresses.data or ""),
                visibility=form.visibility.data,
                actor_id=current_user.id,
            )
            committees.update_committee(
                committee.id,
                name=committee.name,
                visibility=committee.visibility,
                mail_addresses=committee.address_list,
                acknowledge=form.acknowledge.data,
                ack_subject=form.ack_subject.data,
                ack_text=form.ack_text.data,
                discord_webhook=form.discord_webhook.data,
                actor_id=current_user.id,
            )
        except ServiceError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(f"Committee {committee.name} created.", "success")
            return redirect(url_for("admin.committee_edit", slug=committee.slug))
    return render_template("admin/committee_form.html", form=form, committee=None, webhook=None)


@bp.route("/committees/<slug>", methods=["GET", "POST"])
def committee_edit(slug: str):
    """A committee's settings (site admins)."""
    committee = managed_or_404(slug)
    require_site_admin()
    form = CommitteeForm(obj=committee if request.method == "GET" else None)
    if request.method == "GET":
        form.addresses.data = "\n".join(committee.address_list)
        form.visibility.data = committee.visibility.value
        form.discord_webhook.data = ""
    if form.validate_on_submit():
        try:
            committees.update_committee(
                committee.id,
                name=form.name.data or "",
                visibility=form.visibility.data,
                mail_addresses=_addresses(form.addresses.data or ""),
                acknowledge=form.acknowledge.data,
                ack_subject=form.ack_subject.data,
                ack_text=form.ack_text.data,
                discord_webhook=form.discord_webhook.data,
                remove_discord_webhook=form.remove_discord_webhook.data,
                actor_id=current_user.id,
            )
        except ServiceError as error:
            db.session.rollback()
            committee = managed_or_404(slug)
            show_error(form, error)
        else:
            db.session.commit()
            flash("Settings saved.", "success")
            return redirect(url_for("admin.committee_edit", slug=slug))
    try:
        webhook = notifications.discord_webhook(committee)
    except Exception:
        webhook = None
    return render_template(
        "admin/committee_form.html", form=form, committee=committee, webhook=webhook
    )


# -- members --------------------------------------------------------------------------------


@bp.route("/committees/<slug>/members", methods=["GET", "POST"])
def members(slug: str):
    """A committee's members and leads; add an agent by e-mail."""
    committee = managed_or_404(slug)
    form = MemberForm()
    if form.validate_on_submit():
        user = db.session.scalar(
            sa.select(User).where(User.email == (form.email.data or "").strip().lower())
        )
        if user is None:
            show_error(form, ServiceError("no agent has this address", field="email"))
        else:
            committees.set_membership(
                committee.id, user.id, form.role.data, actor_id=current_user.id
            )
            db.session.commit()
            flash(f"{user.name} is a {form.role.data} of {committee.name}.", "success")
            return redirect(url_for("admin.members", slug=slug))
    rows = list(
        db.session.execute(
            sa.select(Membership, User)
            .join(User, Membership.user_id == User.id)
            .where(Membership.committee_id == committee.id)
            .order_by(User.name)
        )
    )
    return render_template(
        "admin/members.html",
        committee=committee,
        rows=rows,
        form=form,
        role_form=RoleForm(),
        action_form=ActionForm(),
    )


@bp.route("/committees/<slug>/members/<int:user_id>/role", methods=["POST"])
def member_role(slug: str, user_id: int):
    """Make a member a lead or a lead a member."""
    committee = managed_or_404(slug)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    if db.session.get(Membership, {"user_id": user_id, "committee_id": committee.id}) is None:
        abort(404)
    committees.set_membership(committee.id, user_id, form.role.data, actor_id=current_user.id)
    db.session.commit()
    flash("Role changed.", "success")
    return redirect(url_for("admin.members", slug=slug))


@bp.route("/committees/<slug>/members/<int:user_id>/remove", methods=["POST"])
def member_remove(slug: str, user_id: int):
    """Remove a member from the committee."""
    committee = managed_or_404(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        committees.remove_membership(committee.id, user_id, actor_id=current_user.id)
    except NotFound:
        abort(404)
    db.session.commit()
    flash("Member removed.", "success")
    return redirect(url_for("admin.members", slug=slug))


# -- canned replies ---------------------------------------------------------------------------


def _canned_or_404(committee: Committee, canned_id: int) -> CannedReply:
    reply = db.session.get(CannedReply, canned_id)
    if reply is None or reply.committee_id != committee.id:
        abort(404)
    return reply


@bp.route("/committees/<slug>/canned", methods=["GET", "POST"])
def canned_list(slug: str):
    """A committee's canned replies; add one."""
    committee = managed_or_404(slug)
    form = CannedForm()
    if form.validate_on_submit():
        try:
            canned.create(
                committee.id, form.title.data or "", form.body.data or "", actor_id=current_user.id
            )
        except ServiceError as error:
            db.session.rollback()
            committee = managed_or_404(slug)
            show_error(form, error)
        else:
            db.session.commit()
            flash("Canned reply added.", "success")
            return redirect(url_for("admin.canned_list", slug=slug))
    return render_template(
        "admin/canned.html",
        committee=committee,
        replies=canned.for_committee(committee.id),
        form=form,
        action_form=ActionForm(),
    )


@bp.route("/committees/<slug>/canned/<int:canned_id>", methods=["GET", "POST"])
def canned_edit(slug: str, canned_id: int):
    """Edit a canned reply."""
    committee = managed_or_404(slug)
    reply = _canned_or_404(committee, canned_id)
    form = CannedForm(obj=reply if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            canned.update(
                reply.id, form.title.data or "", form.body.data or "", actor_id=current_user.id
            )
        except ServiceError as error:
            db.session.rollback()
            committee = managed_or_404(slug)
            reply = _canned_or_404(committee, canned_id)
            show_error(form, error)
        else:
            db.session.commit()
            flash("Canned reply saved.", "success")
            return redirect(url_for("admin.canned_list", slug=slug))
    return render_template("admin/canned_edit.html", committee=committee, reply=reply, form=form)


@bp.route("/committees/<slug>/canned/<int:canned_id>/delete", methods=["POST"])
def canned_delete(slug: str, canned_id: int):
    """Delete a canned reply."""
    committee = managed_or_404(slug)
    reply = _canned_or_404(committee, canned_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    canned.delete(reply.id, actor_id=current_user.id)
    db.session.commit()
    flash("Canned reply deleted.", "success")
    return redirect(url_for("admin.canned_list", slug=slug))
