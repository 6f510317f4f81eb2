"""The admin pages under /admin: committees, members, canned replies, routing rules,
mailboxes, quarantine, users and the audit log.

Site admins manage everything; a committee's leads manage its members and canned replies.
Every page asks helpdesk.access: anyone else gets "not found", so a private committee's
admin pages do not exist for outsiders.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from helpdesk import access
from helpdesk.errors import ServiceError
from helpdesk.models import Committee

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def _only_admins_and_leads():
    """Everyone else is told there is nothing here."""
    if not access.may_administer(current_user):
        abort(404)


@bp.app_context_processor
def _admin_link():
    """``show_admin_link()`` for the navigation bar, asked only when a page renders it."""

    def show_admin_link() -> bool:
        try:
            return access.may_administer(current_user)
        except SQLAlchemyError:
            # An error page rendered after the database failed still renders.
            return False

    return {"show_admin_link": show_admin_link}


def require_site_admin() -> None:
    """Abort with 404 unless the agent is a site admin."""
    if not access.is_site_admin(current_user):
        abort(404)


def managed_or_404(slug: str) -> Committee:
    """The committee if the agent manages it; 404 otherwise (private or not)."""
    committee = access.managed_committee(current_user, slug)
    if committee is None:
        abort(404)
    return committee


def show_error(form, error: ServiceError) -> None:
    """Show a service's refusal next to the field it names, or at the top."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, error.message]
    else:
        flash(error.message, "danger")


from helpdesk.web.admin import audit_log, committees, inbound, users  # noqa: E402, F401
