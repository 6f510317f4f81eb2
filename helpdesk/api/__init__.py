"""The JSON API (bearer tokens from `helpdesk api-token`)."""

from __future__ import annotations

from flask import Blueprint

from helpdesk.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

from helpdesk.api import auth, messages, tickets  # noqa: E402,F401 - routes register on bp
