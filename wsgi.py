"""WSGI entry point: ``gunicorn wsgi:app``."""

from helpdesk import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    # One line naming the variable, instead of a traceback from the import.
    raise SystemExit(f"helpdesk: configuration error: {error}") from None
