"""Settings read from the environment through strict parsers.

Every setting is a ``HELPDESK_*`` variable. A value that does not parse stops start-up
with a :class:`ConfigError` whose message names the variable, so an operator sees one
line saying what to fix instead of a traceback from deep inside a library. The parsers
and :class:`ConfigError` live in :mod:`helpdesk.config_parsers`; this module holds the
table of settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from helpdesk.config_parsers import (
    ConfigError,
    parse_bare_address,
    parse_base_url,
    parse_choice,
    parse_database_url,
    parse_ec_public_key,
    parse_fernet_keys,
    parse_fraction,
    parse_mail_address,
    parse_path,
    parse_positive_int,
    parse_rate,
    parse_redis_url,
    parse_secret_key,
    parse_smtp_url,
    parse_tag,
    parse_text,
)

ENVIRONMENTS = ("development", "production")
MAIL_BACKENDS = ("files", "smtp", "sendgrid")


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
