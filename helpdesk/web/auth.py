"""Logging in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from helpdesk.agents import authenticate
from helpdesk.extensions import db, limiter, login_account_key

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """E-mail and password."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def _login_rate() -> str:
    return current_app.config["HELPDESK_LOGIN_RATE"]


def _failed(response) -> bool:
    # Only failed attempts count against the limits; a successful login redirects.
    return response.status_code != 302


def safe_next(target: str | None) -> str:
    """A same-site path to go to next, else the dashboard (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("tickets.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_rate, methods=["POST"], key_func=login_account_key, deduct_when=_failed)
def login():
    """Show the login form; log the agent in."""
    if current_user.is_authenticated:
        return redirect(url_for("tickets.dashboard"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        flash("Wrong e-mail or password.", "danger")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Log out (POST with a CSRF token, so that no link can log an agent out)."""
    logout_user()
    return redirect(url_for("auth.login"))
