"""Server-rendered pages for agents."""

from __future__ import annotations

from flask import Flask

from helpdesk.web import actions, auth, campaigns, errors, security, tickets


def register_web(app: Flask) -> None:
    """Register the web blueprints, error pages and security headers."""
    app.register_blueprint(auth.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(campaigns.bp)
    errors.register(app)
    security.register(app)
