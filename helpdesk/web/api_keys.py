"""Organiser page for API keys: issue (the key is shown once), scopes, rate limit, revoke.

Site admins only. Keys are stored as their SHA-256; the page shows each key's prefix.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from helpdesk import access, agents
from helpdesk.config import ConfigError, parse_rate
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import ApiToken

bp = Blueprint("api_keys", __name__, url_prefix="/outbound/api-keys")

SCOPES = [
    SelectChoice("messages:send", "messages:send: send transactional mail and read it back"),
    SelectChoice("messages:read", "messages:read: read back mail sent with the owner's keys"),
]


class ApiKeyForm(FlaskForm):
    """A new API key."""

    name = StringField("What it is for", validators=[Length(max=200)])
    owner = StringField(
        "Owner (agent e-mail; empty: you)", validators=[Optional(), Length(max=320)]
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=SCOPES,
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    rate_limit = StringField(
        "Rate limit (e.g. 10/second;1000/hour; empty: the default)",
        validators=[Optional(), Length(max=100)],
    )

    def validate_rate_limit(self, field):
        """A `limits` rate string, or empty."""
        if field.data and field.data.strip():
            try:
                parse_rate("rate_limit", field.data)
            except ConfigError as error:
                raise ValidationError(error.reason) from None


class RevokeForm(FlaskForm):
    """Revoke one key (CSRF only)."""


@bp.before_request
@login_required
def _admins_only():
    if not access.can_manage_api_keys(current_user):
        abort(403)


def _page(form: ApiKeyForm, new_token: str | None = None, status: int = 200):
    keys = db.session.scalars(
        sa.select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
    ).all()
    return (
        render_template(
            "outbound/api_keys.html",
            form=form,
            revoke_form=RevokeForm(),
            keys=keys,
            new_token=new_token,
        ),
        status,
    )


@bp.get("")
def index():
    """The keys, newest first, revoked ones last."""
    return _page(ApiKeyForm())


@bp.post("")
def create():
    """Issue a key and show it this once."""
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        owner = agents.get_agent(form.owner.data) if form.owner.data else current_user
        token = agents.issue_api_token(
            owner.id,
            name=(form.name.data or "").strip(),
            scopes=list(form.scopes.data),
            rate_limit=(form.rate_limit.data or "").strip() or None,
            actor_id=current_user.id,
        )
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        form.owner.errors = [error.message]
        return _page(form, status=400)
    # Rendered, not redirected: the key must not travel through the session cookie.
    return _page(ApiKeyForm(formdata=None), new_token=token)


@bp.post("/<int:key_id>/revoke")
def revoke(key_id: int):
    """Revoke a key; it stops working at once."""
    if not RevokeForm().validate_on_submit():
        abort(400)
    try:
        agents.revoke_api_token(key_id, actor_id=current_user.id)
    except ServiceError:
        abort(404)
    db.session.commit()
    flash("The key is revoked.", "success")
    return redirect(url_for("api_keys.index"))
