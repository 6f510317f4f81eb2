"""Server-rendered pages for agents."""

from __future__ import annotations

from flask import Flask

from helpdesk.web import (
    account,
    actions,
    api_keys,
    audience,
    auth,
    campaigns,
    errors,
    mail_templates,
    security,
    subscribers_public,
    tickets,
)
from helpdesk.web.admin import bp as admin_bp


def register_web(app: Flask) -> None:
    """Register the web blueprints, error pages and security headers."""
    app.register_blueprint(auth.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(audience.bp)
    app.register_blueprint(subscribers_public.bp)
    app.register_blueprint(api_keys.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(mail_templates.bp)
    errors.register(app)
    security.register(app)
