"""The JSON API (bearer tokens from `helpdesk api-token`)."""

from __future__ import annotations

from flask import Blueprint, request

from helpdesk.extensions import csrf, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@limiter.request_filter
def _counted_per_key() -> bool:
    """The API limits each key itself (messages.py), and has no per-address limits: the
    limiter's per-request search for decorated limits would find none (5 % of a request)."""
    return request.blueprint == bp.name


from helpdesk.api import auth, messages, tickets  # noqa: E402,F401 - routes register on bp
