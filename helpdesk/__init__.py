"""helpdesk: a helpdesk and mass-mail service for volunteer-run conferences."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from helpdesk.config import ConfigError, Settings, setting_variables
from helpdesk.instance_secrets import load_or_create_secret_key

__all__ = ["ConfigError", "create_app"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """A top-level project folder (templates, migrations), in a checkout or a wheel."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the {name}/ folder next to {_PACKAGE_DIR}")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Settings come from ``HELPDESK_*`` environment variables; ``config`` overrides them
    (same names) and may also carry plain Flask settings such as ``TESTING``, which are
    applied last. A bad setting raises :class:`ConfigError` naming the variable.
    """
    overrides = dict(config or {})
    variables = setting_variables()
    environ: dict[str, Any] = {k: v for k, v in os.environ.items() if k in variables}
    environ.update({k: v for k, v in overrides.items() if k in variables})
    settings = Settings.from_environ(environ)

    app = Flask(
        __name__,
        instance_path=str(settings.instance_path) if settings.instance_path else None,
        instance_relative_config=True,
        template_folder=str(resource_dir("templates")),
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    _configure(app, settings, instance)
    app.config.update({k: v for k, v in overrides.items() if k not in variables})

    # Kept so that worker processes (parallel ingest) can build the same app.
    app.extensions["helpdesk_config"] = overrides
    _init_extensions(app)
    _register_blueprints(app)
    from helpdesk.cli import register_commands

    register_commands(app)
    return app


def _configure(app: Flask, settings: Settings, instance: Path) -> None:
    secret_key = settings.secret_key or load_or_create_secret_key(instance)
    database_url = settings.database_url or f"sqlite:///{instance / 'helpdesk.sqlite3'}"
    secure = settings.secure_cookies
    app.config.update(
        HELPDESK_SETTINGS=settings,
        HELPDESK_ENV=settings.env,
        HELPDESK_BASE_URL=settings.base_url,
        HELPDESK_REDIS_URL=settings.redis_url,
        HELPDESK_MAIL_BACKEND=settings.mail_backend,
        HELPDESK_OUTBOX_PATH=str(settings.outbox_path or instance / "outbox"),
        HELPDESK_SMTP_URL=settings.smtp_url,
        HELPDESK_SENDGRID_API_KEY=settings.sendgrid_api_key,
        HELPDESK_SENDGRID_HOST=settings.sendgrid_host,
        HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY=settings.sendgrid_webhook_public_key,
        HELPDESK_SENDGRID_WEBHOOK_TOLERANCE=settings.sendgrid_webhook_tolerance,
        HELPDESK_MAIL_RATE=settings.mail_rate,
        HELPDESK_MAIL_TIMEOUT=settings.mail_timeout,
        HELPDESK_API_RATE=settings.api_rate,
        HELPDESK_PAUSE_BOUNCE_RATE=settings.pause_bounce_rate,
        HELPDESK_PAUSE_COMPLAINT_RATE=settings.pause_complaint_rate,
        HELPDESK_PAUSE_MIN_DELIVERIES=settings.pause_min_deliveries,
        HELPDESK_POSTAL_ADDRESS=settings.postal_address,
        HELPDESK_CAMPAIGN_GRACE_MINUTES=settings.campaign_grace_minutes,
        HELPDESK_CAMPAIGN_BATCH_SIZE=min(settings.campaign_batch_size, 1000),
        HELPDESK_CAMPAIGN_LEASE_SECONDS=settings.campaign_lease_seconds,
        HELPDESK_CAMPAIGN_JOBS=settings.campaign_jobs,
        HELPDESK_RAW_MAIL_PATH=str(settings.raw_mail_path or instance / "raw-mail"),
        HELPDESK_ATTACHMENTS_PATH=str(settings.attachments_path or instance / "attachments"),
        HELPDESK_LOGIN_RATE=settings.login_rate,
        HELPDESK_SUBSCRIBE_RATE=settings.subscribe_rate,
        HELPDESK_UNSUBSCRIBE_ADDRESS=settings.unsubscribe_address,
        HELPDESK_ENCRYPTION_KEYS=settings.encryption_key
        or (load_or_create_secret_key(instance, "encryption_key", fernet=True),),
        HELPDESK_SUBJECT_TAG=settings.subject_tag,
        HELPDESK_REOPEN_DAYS=settings.reopen_days,
        HELPDESK_ACK_INTERVAL_MINUTES=settings.ack_interval_minutes,
        HELPDESK_MAX_MAIL_BYTES=settings.max_mail_bytes,
        HELPDESK_MAIL_FROM=settings.mail_from or f"helpdesk@{urlsplit(settings.base_url).hostname}",
        HELPDESK_INVITATION_DAYS=settings.invitation_days,
        HELPDESK_PASSWORD_RESET_MINUTES=settings.password_reset_minutes,
        HELPDESK_DISCORD_API_URL=settings.discord_api_url,
        HELPDESK_JOBS_RAISE=False,
        SECRET_KEY=secret_key,
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(database_url),
        SESSION_COOKIE_NAME="helpdesk_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        PREFERRED_URL_SCHEME="https" if secure else "http",
        WTF_CSRF_TIME_LIMIT=None,  # tokens are bound to the session, which expires itself
        WTF_CSRF_SSL_STRICT=secure,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_KEY_PREFIX="helpdesk",
        RATELIMIT_HEADERS_ENABLED=True,
        BOOTSTRAP_SERVE_LOCAL=True,
        MAX_CONTENT_LENGTH=50 * 1024 * 1024,
    )
    logging.getLogger("helpdesk").setLevel(settings.log_level.upper())
    # mail-parser logs a warning for every MIME part type it has no accessor for (e.g.
    # text/rfc822-headers in bounces); the parse itself is fine.
    logging.getLogger("mailparser").setLevel(logging.ERROR)


def _engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 10, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


def _init_extensions(app: Flask) -> None:
    from sqlalchemy.orm import configure_mappers

    from helpdesk import models  # noqa: F401 - registers every table on the metadata
    from helpdesk.agents import load_session_user
    from helpdesk.database import sqlite_engine_setup
    from helpdesk.extensions import bootstrap, csrf, db, limiter, login_manager, migrate
    from helpdesk.jobs import init_app as init_jobs

    # Otherwise the first query of each process does it (a third of a second), inside
    # some unlucky request of a web worker or job of an RQ worker.
    configure_mappers()
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                sqlite_engine_setup(engine)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")), compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    bootstrap.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in."
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_session_user)
    init_jobs(app)


def _register_blueprints(app: Flask) -> None:
    from helpdesk.api import bp as api_bp
    from helpdesk.web import register_web

    register_web(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(__import__("helpdesk.outbound.webhooks", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("helpdesk.api.openapi", fromlist=["bp"]).bp)
