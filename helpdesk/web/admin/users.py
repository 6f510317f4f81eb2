"""Admin pages of agents (site admins): invite, deactivate, make admin."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from helpdesk import agents, audit, password_links
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import User
from helpdesk.web.admin import bp, require_site_admin, show_error
from helpdesk.web.admin.forms import ActionForm, InviteForm


@bp.route("/users", methods=["GET", "POST"])
def users():
    """Every agent; invite a new one by mail."""
    require_site_admin()
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = password_links.invite(
                form.email.data or "",
                (form.name.data or "").strip(),
                admin=form.admin.data,
                actor_id=current_user.id,
            )
        except ServiceError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("admin.users"))
    rows = list(db.session.scalars(sa.select(User).order_by(User.name)))
    return render_template("admin/users.html", users=rows, form=form, action_form=ActionForm())


@bp.route(
    "/users/<int:user_id>/<any(deactivate, activate, make_admin, remove_admin, resend):action>",
    methods=["POST"],
)
def user_action(user_id: int, action: str):
    """Deactivate or reactivate an agent, grant or take site admin, resend an invitation."""
    require_site_admin()
    if not ActionForm().validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    if user.id == current_user.id and action in ("deactivate", "remove_admin"):
        flash("You cannot do that to your own account.", "danger")
        return redirect(url_for("admin.users"))
    try:
        if action in ("deactivate", "activate"):
            agents.set_active(user.id, action == "activate", actor_id=current_user.id)
        elif action in ("make_admin", "remove_admin"):
            wanted = action == "make_admin"
            if user.is_admin != wanted:
                # Read on every request: the change applies to open sessions at once.
                user.is_admin = wanted
                audit.record(
                    "agent.admin_granted" if wanted else "agent.admin_revoked",
                    actor_id=current_user.id,
                    subject_user_id=user.id,
                )
        else:
            password_links.resend_invitation(user.id, actor_id=current_user.id)
    except (NotFound, ServiceError) as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("admin.users"))
    db.session.commit()
    flash(f"{user.name}: done ({action.replace('_', ' ')}).", "success")
    return redirect(url_for("admin.users"))
