"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from helpdesk.database import Model, Session

db = SQLAlchemy(model_class=Model, disable_autonaming=True, session_options={"class_": Session})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()


def _client_address() -> str:
    return get_remote_address() or "unknown"


limiter = Limiter(key_func=_client_address, headers_enabled=True)


def login_account_key() -> str:
    """Rate-limit key for the account a login form names (lower-cased e-mail)."""
    return "account:" + (request.form.get("email") or "").strip().lower()
