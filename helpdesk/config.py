"""Settings read from the environment through strict parsers.

Every setting is a ``HELPDESK_*`` variable. A value that does not parse stops start-up
with a :class:`ConfigError` whose message names the variable, so an operator sees one
line saying what to fix instead of a traceback from deep inside a library.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENVIRONMENTS = ("development", "production")
MAIL_BACKENDS = ("files", "smtp", "sendgrid")
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
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


def parse_redis_url(name: str, raw: str) -> str:
    """Parse a redis://, rediss:// or unix:// URL."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(name, f"{raw!r} is not a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(name, f"{raw!r} names no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(name, f"{raw!r} has an invalid port") from None
    return value


def parse_base_url(name: str, raw: str) -> str:
    """Parse the public http(s) URL the service is reached at, without a trailing slash."""
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"{raw!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ConfigError(name, f"{raw!r} must not have a query or fragment")
    try:
        parts.port  # noqa: B018
    except ValueError:
        raise ConfigError(name, f"{raw!r} has an invalid port") from None
    return value


def parse_smtp_url(name: str, raw: str) -> str:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` with optional credentials."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(name, f"{raw!r} does not start with one of {', '.join(SMTP_SCHEMES)}://")
    if not parts.hostname:
        raise ConfigError(name, f"{raw!r} names no host")
    try:
        parts.port  # noqa: B018
    except ValueError:
        raise ConfigError(name, f"{raw!r} has an invalid port") from None
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


# -- the settings ------------------------------------------------------------------------


def _setting(variable: str, parser: Callable[[str, str], Any], default: Any = None, doc: str = ""):
    return field(default=default, metadata={"variable": variable, "parser": parser, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Typed settings; each field is read from the environment variable in its metadata."""

    env: str = _setting(
        "HELPDESK_ENV",
        parse_choice(ENVIRONMENTS),
        "development",
        "development or production; production requires HELPDESK_SECRET_KEY",
    )
    instance_path: Path | None = _setting(
        "HELPDESK_INSTANCE_PATH",
        parse_path,
        None,
        "instance folder (SQLite file, generated secret, outbox, mail store); "
        "default: Flask's instance folder",
    )
    database_url: str | None = _setting(
        "HELPDESK_DATABASE_URL",
        parse_database_url,
        None,
        "postgresql://user@host/db or sqlite:///path; default: SQLite file in the instance folder",
    )
    redis_url: str | None = _setting(
        "HELPDESK_REDIS_URL",
        parse_redis_url,
        None,
        "Redis for RQ jobs and shared rate limits; unset: jobs run inline after commit",
    )
    secret_key: str | None = _setting(
        "HELPDESK_SECRET_KEY",
        parse_secret_key,
        None,
        "signs sessions and tokens; development generates one in the instance folder",
    )
    base_url: str = _setting(
        "HELPDESK_BASE_URL",
        parse_base_url,
        "http://127.0.0.1:5000",
        "public URL of the service, used in mails and links; https makes cookies Secure",
    )
    mail_backend: str = _setting(
        "HELPDESK_MAIL_BACKEND",
        parse_choice(MAIL_BACKENDS),
        "files",
        "files (.eml files in the outbox folder), smtp or sendgrid",
    )
    outbox_path: Path | None = _setting(
        "HELPDESK_OUTBOX_PATH",
        parse_path,
        None,
        "where the files backend writes .eml files; default: instance/outbox",
    )
    smtp_url: str | None = _setting(
        "HELPDESK_SMTP_URL",
        parse_smtp_url,
        None,
        "smtp+starttls://user:pass@host:587, smtps://... or smtp://...; required by smtp",
    )
    sendgrid_api_key: str | None = _setting(
        "HELPDESK_SENDGRID_API_KEY", parse_text, None, "SendGrid API key; required by sendgrid"
    )
    sendgrid_host: str = _setting(
        "HELPDESK_SENDGRID_HOST",
        parse_base_url,
        "https://api.sendgrid.com",
        "SendGrid API host",
    )
    sendgrid_webhook_public_key: str | None = _setting(
        "HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY",
        parse_ec_public_key,
        None,
        "verification key of SendGrid's Signed Event Webhook (base64, as SendGrid shows it); "
        "unset: event webhooks are refused",
    )
    sendgrid_webhook_tolerance: int = _setting(
        "HELPDESK_SENDGRID_WEBHOOK_TOLERANCE",
        parse_positive_int,
        600,
        "seconds a signed webhook's timestamp may differ from our clock",
    )
    mail_rate: str | None = _setting(
        "HELPDESK_MAIL_RATE",
        parse_rate,
        None,
        "recipients per period shared by all workers, e.g. 50/second;100000/hour; unset: no limit",
    )
    mail_timeout: int = _setting(
        "HELPDESK_MAIL_TIMEOUT",
        parse_positive_int,
        30,
        "seconds each SMTP command or SendGrid request may take before it is given up",
    )
    api_rate: str = _setting(
        "HELPDESK_API_RATE",
        parse_rate,
        "20/second;10000/hour",
        "requests per API key to POST /api/v1/messages when the key sets no limit of its own",
    )
    pause_bounce_rate: float = _setting(
        "HELPDESK_PAUSE_BOUNCE_RATE",
        parse_fraction,
        0.05,
        "a sending campaign pauses itself when its bounces pass this share of sent mail",
    )
    pause_complaint_rate: float = _setting(
        "HELPDESK_PAUSE_COMPLAINT_RATE",
        parse_fraction,
        0.001,
        "a sending campaign pauses itself when its spam reports pass this share of sent mail",
    )
    pause_min_deliveries: int = _setting(
        "HELPDESK_PAUSE_MIN_DELIVERIES",
        parse_positive_int,
        500,
        "sent mails a campaign needs before the bounce and complaint rates can pause it",
    )
    postal_address: str | None = _setting(
        "HELPDESK_POSTAL_ADDRESS",
        parse_text,
        None,
        "the sender's postal address, shown in every newsletter's footer; "
        "required to launch campaigns",
    )
    campaign_grace_minutes: int = _setting(
        "HELPDESK_CAMPAIGN_GRACE_MINUTES",
        parse_positive_int,
        60,
        "a scheduled campaign more than this late waits for confirmation instead of firing",
    )
    campaign_batch_size: int = _setting(
        "HELPDESK_CAMPAIGN_BATCH_SIZE",
        parse_positive_int,
        500,
        "recipients claimed and handed off together (at most 1000; fewer at low rates)",
    )
    campaign_lease_seconds: int = _setting(
        "HELPDESK_CAMPAIGN_LEASE_SECONDS",
        parse_positive_int,
        600,
        "how long a claimed batch is held before the sweeper recovers it",
    )
    campaign_jobs: int = _setting(
        "HELPDESK_CAMPAIGN_JOBS",
        parse_positive_int,
        3,
        "batch jobs sending one campaign in parallel",
    )
    raw_mail_path: Path | None = _setting(
        "HELPDESK_RAW_MAIL_PATH",
        parse_path,
        None,
        "content-addressed store of every received mail; default: instance/raw-mail",
    )
    attachments_path: Path | None = _setting(
        "HELPDESK_ATTACHMENTS_PATH",
        parse_path,
        None,
        "content-addressed store of attachments; default: instance/attachments",
    )
    encryption_key: tuple[str, ...] | None = _setting(
        "HELPDESK_ENCRYPTION_KEY",
        parse_fernet_keys,
        None,
        "Fernet key(s) encrypting stored mailbox secrets, comma-separated for rotation; "
        "development generates one in the instance folder",
    )
    subject_tag: str = _setting(
        "HELPDESK_SUBJECT_TAG",
        parse_tag,
        "Helpdesk",
        "tag of ticket subjects, e.g. PyConDE gives [PyConDE #1234]",
    )
    reopen_days: int = _setting(
        "HELPDESK_REOPEN_DAYS",
        parse_positive_int,
        30,
        "a reply to a ticket closed longer ago opens a new, linked ticket instead of reopening",
    )
    ack_interval_minutes: int = _setting(
        "HELPDESK_ACK_INTERVAL_MINUTES",
        parse_positive_int,
        10,
        "at most one acknowledgement per sender in this many minutes",
    )
    max_mail_bytes: int = _setting(
        "HELPDESK_MAX_MAIL_BYTES",
        parse_positive_int,
        30 * 1024 * 1024,
        "larger mail is kept raw and opens a ticket with a note; its parts are not extracted",
    )
    dkim_txt_overrides: Path | None = _setting(
        "HELPDESK_DKIM_TXT_OVERRIDES",
        parse_path,
        None,
        "JSON file mapping selector._domainkey.domain to its DKIM TXT record; when set it "
        "replaces DNS lookups (tests, air-gapped installs); unset: DNS",
    )
    mail_from: str | None = _setting(
        "HELPDESK_MAIL_FROM",
        parse_mail_address,
        None,
        "sender of the service's own mail (invitations, password resets, notifications), "
        "e.g. Helpdesk <helpdesk@pycon.example>; default: helpdesk@ the host of "
        "HELPDESK_BASE_URL",
    )
    invitation_days: int = _setting(
        "HELPDESK_INVITATION_DAYS",
        parse_positive_int,
        7,
        "days an invitation link works (until the invitee sets a password)",
    )
    password_reset_minutes: int = _setting(
        "HELPDESK_PASSWORD_RESET_MINUTES",
        parse_positive_int,
        60,
        "minutes a password reset link works (once)",
    )
    discord_api_url: str = _setting(
        "HELPDESK_DISCORD_API_URL",
        parse_base_url,
        "https://discord.com/api",
        "Discord API base that committees' webhooks are posted to",
    )
    login_rate: str = _setting(
        "HELPDESK_LOGIN_RATE",
        parse_rate,
        "10/minute;50/hour",
        "failed logins allowed per client address and per account",
    )
    subscribe_rate: str = _setting(
        "HELPDESK_SUBSCRIBE_RATE",
        parse_rate,
        "5/minute;30/hour",
        "public subscribe form submissions allowed per client address and per address subscribed",
    )
    unsubscribe_address: str | None = _setting(
        "HELPDESK_UNSUBSCRIBE_ADDRESS",
        parse_bare_address,
        None,
        "mailbox the ingester reads for mailto: unsubscribes (List-Unsubscribe); "
        "unset: the mailto: link points at the campaign's sender",
    )
    session_hours: int = _setting(
        "HELPDESK_SESSION_HOURS",
        parse_positive_int,
        12,
        "how long a login lasts",
    )
    log_level: str = _setting(
        "HELPDESK_LOG_LEVEL",
        parse_choice(("debug", "info", "warning", "error")),
        "info",
        "debug, info, warning or error",
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Settings:
        """Parse every ``HELPDESK_*`` setting present in ``environ``.

        Values that are already typed (as tests may pass them) are kept as given;
        strings go through the setting's parser.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable = f.metadata["variable"]
            raw = environ.get(variable)
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                continue
            values[f.name] = f.metadata["parser"](variable, raw) if isinstance(raw, str) else raw
        settings = cls(**values)
        settings._check_dependencies()
        return settings

    def _check_dependencies(self) -> None:
        if self.env == "production" and not self.secret_key:
            raise ConfigError("HELPDESK_SECRET_KEY", "is required when HELPDESK_ENV=production")
        if self.env == "production" and not self.encryption_key:
            raise ConfigError("HELPDESK_ENCRYPTION_KEY", "is required when HELPDESK_ENV=production")
        if self.mail_backend == "smtp" and not self.smtp_url:
            raise ConfigError("HELPDESK_SMTP_URL", "is required when HELPDESK_MAIL_BACKEND=smtp")
        if self.mail_backend == "sendgrid" and not self.sendgrid_api_key:
            raise ConfigError(
                "HELPDESK_SENDGRID_API_KEY", "is required when HELPDESK_MAIL_BACKEND=sendgrid"
            )

    @property
    def secure_cookies(self) -> bool:
        """Cookies are marked Secure when the service is reached over https."""
        return self.base_url.startswith("https://")


def setting_variables() -> frozenset[str]:
    """The names of every environment variable that is a setting."""
    return frozenset(f.metadata["variable"] for f in fields(Settings))


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README and `--help`."""
    rows = []
    for f in fields(Settings):
        default = "" if f.default is None else str(f.default)
        rows.append((f.metadata["variable"], default, f.metadata["doc"]))
    return rows


def load_or_create_secret_key(
    instance_path: Path, name: str = SECRET_KEY_FILE, *, fernet: bool = False
) -> str:
    """Return a development secret kept in the instance folder, creating it once.

    ``fernet`` makes it a Fernet key (for encrypting stored secrets) instead of a
    session-signing secret.
    """
    path = instance_path / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    if fernet:
        from cryptography.fernet import Fernet

        value = Fernet.generate_key().decode()
    else:
        value = secrets.token_urlsafe(48)
    instance_path.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file, then linked into place: link() fails when the name
    # exists, so two processes starting at once agree on the first one's key.
    tmp = instance_path / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
