"""Signed addresses for a mail's inline (cid:) images.

A mail's HTML is shown in a sandboxed iframe whose documents have an opaque origin, so
the browser does not send the agent's session cookie with the image requests it makes.
Each inline image therefore gets an address signed for the agent who opened the page;
the route that serves it still asks helpdesk.access whether that agent may read it.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from helpdesk.extensions import db
from helpdesk.models import User

SALT = "helpdesk.inline-image"
MAX_AGE_SECONDS = 12 * 3600
# Image types a browser shows without running anything (no SVG: it can carry script).
SHOWN_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def token_for(user: User, attachment_id: int) -> str:
    """A token letting ``user`` (as long as their session is valid) load one attachment."""
    return _serializer().dumps([user.id, user.session_version, attachment_id])


def user_for(token: str, attachment_id: int) -> User | None:
    """The active agent a token was made for, if it is valid and names this attachment."""
    try:
        user_id, version, signed_id = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    if signed_id != attachment_id:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user
