"""Strict parsers for settings: each turns a variable's raw string into a typed value.

A parser takes ``(variable name, raw string)`` and either returns the value or raises
:class:`ConfigError` naming the variable, so a bad setting stops start-up with one line
saying what to fix. The settings table that uses them is in :mod:`helpdesk.config`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """A setting is missing or malformed; the message starts with the variable's name."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


# -- parsers: each takes (variable name, raw string) and returns the typed value ----------


def parse_choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    """Return a parser accepting exactly one of ``choices`` (case-insensitive)."""

    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(name, f"{raw!r} is not one of {', '.join(choices)}")
        return value

    return parse


def parse_bool(name: str, raw: str) -> bool:
    """Parse the usual spellings of yes and no."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"{raw!r} is not a boolean (use true or false)")


def parse_positive_int(name: str, raw: str) -> int:
    """Parse an integer greater than zero."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not an integer") from None
    if value <= 0:
        raise ConfigError(name, f"{raw!r} must be greater than zero")
    return value


def parse_path(name: str, raw: str) -> Path:
    """Parse a filesystem path; relative paths are taken from the working directory."""
    if not raw.strip():
        raise ConfigError(name, "is empty")
    return Path(raw.strip()).expanduser().absolute()


def parse_database_url(name: str, raw: str) -> str:
    """Parse a SQLAlchemy URL for PostgreSQL (psycopg 3) or SQLite."""
    try:
        url: URL = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(name, f"{raw!r} is not a database URL") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg", "psycopg2"):
            raise ConfigError(name, f"unsupported PostgreSQL driver {driver!r} (use psycopg)")
        if not url.database:
            raise ConfigError(name, "names no database")
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigError(name, f"unsupported SQLite driver {driver!r}")
    else:
        raise ConfigError(name, f"unsupported database {backend!r} (use postgresql or sqlite)")
    return url.render_as_string(hide_password=False)


def _check_port(name: str, raw: str, parts: SplitResult) -> None:
    """A port that is not a number (or out of range) is an error, not a default."""
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(name, f"{raw!r} has an invalid port") from None


def parse_redis_url(name: str, raw: str) -> str:
    """Parse a redis://, rediss:// or unix:// URL."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(name, f"{raw!r} is not a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(name, f"{raw!r} names no host")
    _check_port(name, raw, parts)
    return value


def parse_base_url(name: str, raw: str) -> str:
    """Parse the public http(s) URL the service is reached at, without a trailing slash."""
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"{raw!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ConfigError(name, f"{raw!r} must not have a query or fragment")
    _check_port(name, raw, parts)
    return value


def parse_smtp_url(name: str, raw: str) -> str:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` with optional credentials."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(name, f"{raw!r} does not start with one of {', '.join(SMTP_SCHEMES)}://")
    if not parts.hostname:
        raise ConfigError(name, f"{raw!r} names no host")
    _check_port(name, raw, parts)
    return value


def parse_secret_key(name: str, raw: str) -> str:
    """Parse a secret key long enough to sign sessions and tokens."""
    value = raw.strip()
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(name, f"must be at least {MIN_SECRET_KEY_LENGTH} characters long")
    return value


def parse_rate(name: str, raw: str) -> str:
    """Parse a rate-limit string such as ``10/minute;100/hour`` (the `limits` notation)."""
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a rate such as 10/minute;100/hour") from None
    return raw.strip()


def parse_fernet_keys(name: str, raw: str) -> tuple[str, ...]:
    """Parse one or more comma-separated Fernet keys (the first encrypts; all decrypt)."""
    import base64
    import binascii

    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        raise ConfigError(name, "is empty")
    for key in keys:
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ConfigError(
                name,
                "must be Fernet keys (32 url-safe base64 bytes each, comma-separated); "
                "make one with: python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
            )
    return keys


def parse_tag(name: str, raw: str) -> str:
    """Parse the subject tag prefix: letters, digits, spaces, dots and dashes."""
    import re

    value = raw.strip()
    if not re.fullmatch(r"[\w .-]{1,40}", value) or "#" in value:
        raise ConfigError(name, f"{raw!r} must be 1-40 letters, digits, spaces, dots or dashes")
    return value


def parse_ec_public_key(name: str, raw: str) -> str:
    """Parse an ECDSA P-256 public key given as base64 DER (SubjectPublicKeyInfo).

    That is how SendGrid shows the Signed Event Webhook's verification key; PEM armour
    around it is tolerated.
    """
    from helpdesk.outbound.webhook_signature import load_public_key

    try:
        load_public_key(raw)
    except ValueError as error:
        raise ConfigError(name, str(error)) from None
    return raw.strip()


def parse_mail_address(name: str, raw: str) -> str:
    """Parse a single mail address, optionally with a display name (``Helpdesk <a@b.c>``)."""
    from email.utils import parseaddr

    value = raw.strip()
    address = parseaddr(value)[1]
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in address):
        raise ConfigError(name, f"{raw!r} is not a mail address")
    return value


def parse_bare_address(name: str, raw: str) -> str:
    """Parse a bare mail address (local@domain), as mail is sent to it."""
    from helpdesk.addresses import is_valid

    value = raw.strip()
    if not is_valid(value) or "+" in value.partition("@")[0]:
        raise ConfigError(name, f"{raw!r} is not a mail address like unsubscribe@example.org")
    return value


def parse_fraction(name: str, raw: str) -> float:
    """Parse a share between 0 and 1 (``0.05`` for five per cent)."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a number") from None
    if not 0 < value <= 1:
        raise ConfigError(name, f"{raw!r} must be greater than 0 and at most 1 (0.05 is 5%)")
    return value


def parse_text(name: str, raw: str) -> str:
    """Parse free text; only emptiness is rejected."""
    if not raw.strip():
        raise ConfigError(name, "is empty")
    return raw.strip()
