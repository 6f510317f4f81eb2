"""The agent's own account: notification opt-ins, accepting an invitation, resetting a
forgotten password."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from helpdesk import notifications, password_links
from helpdesk.errors import ServiceError
from helpdesk.extensions import db, limiter
from helpdesk.models import Committee, Membership
from helpdesk.web.admin.forms import ActionForm, ResetRequestForm, SetPasswordForm

bp = Blueprint("account", __name__)


def _reset_rate() -> str:
    return current_app.config["HELPDESK_LOGIN_RATE"]


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """E-mail notifications, per committee the agent is a member of."""
    rows = list(
        db.session.execute(
            sa.select(Membership, Committee)
            .join(Committee, Membership.committee_id == Committee.id)
            .where(Membership.user_id == current_user.id)
            .order_by(Committee.name)
        )
    )
    form = ActionForm()
    if form.validate_on_submit():
        wanted = set(request.form.getlist("notify"))
        for _membership, committee in rows:
            notifications.set_email_opt_in(
                current_user.id, committee.id, str(committee.id) in wanted
            )
        db.session.commit()
        flash("Notification settings saved.", "success")
        return redirect(url_for("account.account"))
    return render_template("account/account.html", rows=rows, form=form)


def _set_password_page(token: str, purpose: str):
    try:
        user = password_links.user_for_token(token, purpose)
    except ServiceError:
        return render_template("account/link_invalid.html"), 404
    form = SetPasswordForm()
    if purpose == password_links.INVITATION and not form.is_submitted():
        form.name.data = user.name
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            form.confirm.errors = [*form.confirm.errors, "The two passwords differ."]
        else:
            try:
                if purpose == password_links.INVITATION:
                    user = password_links.accept_invitation(
                        token, form.name.data or "", form.password.data or ""
                    )
                else:
                    user = password_links.reset_password(token, form.password.data or "")
            except ServiceError as error:
                db.session.rollback()
                form.password.errors = [*form.password.errors, error.message]
            else:
                db.session.commit()
                logout_user()
                login_user(user)
                flash("Your password is set. Welcome!", "success")
                return redirect(url_for("tickets.dashboard"))
    return render_template(
        "account/set_password.html",
        form=form,
        user=user,
        invitation=purpose == password_links.INVITATION,
    )


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """The invitee chooses their name and password."""
    return _set_password_page(token, password_links.INVITATION)


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(_reset_rate, methods=["POST"])
def reset_request():
    """Ask for a reset link; the answer is the same whether the address exists or not."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        password_links.request_password_reset(form.email.data or "")
        db.session.commit()
        return render_template("account/reset_sent.html")
    return render_template("account/reset_request.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password through a reset link."""
    if len(token) > 1000:
        abort(404)
    return _set_password_page(token, password_links.PASSWORD_RESET)
