"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

from flask import g, jsonify, request
from sqlalchemy.exc import OperationalError

from helpdesk.agents import api_key_for_token, note_api_key_use
from helpdesk.api import bp
from helpdesk.extensions import db
from helpdesk.models import User


def api_error(status: int, error: str, reason: str, **extra):
    """A JSON error body: a machine-readable ``error`` and a human ``reason``."""
    response = jsonify(error=error, reason=reason, **extra)
    response.status_code = status
    return response


def token_required(view):
    """Authenticate the request's ``Authorization: Bearer`` token; sets ``g.api_key``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            response = api_error(401, "unauthorized", "send Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="helpdesk"'
            return response
        key = api_key_for_token(token.strip())
        if key is None:
            response = api_error(401, "unauthorized", "unknown, revoked or inactive token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="helpdesk", error="invalid_token"'
            return response
        g.api_key = key
        try:
            if note_api_key_use(key):
                db.session.commit()
        except OperationalError:
            # Only a hint: on SQLite a concurrent writer can refuse it ("database is
            # locked"); the request itself must not fail for that.
            db.session.rollback()
        return view(*args, **kwargs)

    return wrapper


def api_user() -> User:
    """The agent whose key authenticated the request (loaded on first use)."""
    return db.session.get_one(User, g.api_key.user_id)


@bp.errorhandler(404)
def _not_found(error):
    return api_error(404, "not found", "no such resource, or it is not yours to see")
