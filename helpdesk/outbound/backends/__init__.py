"""Mail backends behind one interface, chosen by ``HELPDESK_MAIL_BACKEND``.

``files`` (the embedded default) writes .eml files, ``smtp`` talks to a relay, and
``sendgrid`` uses SendGrid's v3 API. Every backend takes an :class:`OutgoingBatch` and
returns one :class:`RecipientResult` per recipient; :func:`render_for_recipient` is the
message each recipient gets, whichever backend carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpdesk.config import ConfigError
from helpdesk.outbound.backends.interface import (
    MailBackend,
    Outcome,
    OutgoingAttachment,
    OutgoingBatch,
    Recipient,
    RecipientResult,
)
from helpdesk.outbound.backends.mime import render_for_recipient
from helpdesk.outbound.backends.validation import InvalidMail

__all__ = [
    "InvalidMail",
    "MailBackend",
    "Outcome",
    "OutgoingAttachment",
    "OutgoingBatch",
    "Recipient",
    "RecipientResult",
    "get_backend",
    "render_for_recipient",
]

DEFAULT_TIMEOUT = 30


def _required(app_config: Mapping[str, Any], key: str, backend: str) -> Any:
    value = app_config.get(key)
    if not value:
        raise ConfigError(key, f"is required when HELPDESK_MAIL_BACKEND={backend}")
    return value


def get_backend(app_config: Mapping[str, Any]) -> MailBackend:
    """The backend the app's configuration names (``HELPDESK_MAIL_BACKEND`` and friends)."""
    name = str(app_config.get("HELPDESK_MAIL_BACKEND") or "files").strip().lower()
    timeout = float(app_config.get("HELPDESK_MAIL_TIMEOUT") or DEFAULT_TIMEOUT)
    if name == "files":
        from helpdesk.outbound.backends.files import FilesBackend

        return FilesBackend(Path(app_config.get("HELPDESK_OUTBOX_PATH") or "instance/outbox"))
    if name == "smtp":
        from helpdesk.outbound.backends.smtp import SmtpBackend

        return SmtpBackend(str(_required(app_config, "HELPDESK_SMTP_URL", name)), timeout=timeout)
    if name == "sendgrid":
        from helpdesk.outbound.backends.sendgrid import DEFAULT_HOST, SendGridBackend

        return SendGridBackend(
            str(_required(app_config, "HELPDESK_SENDGRID_API_KEY", name)),
            host=str(app_config.get("HELPDESK_SENDGRID_HOST") or DEFAULT_HOST),
            timeout=timeout,
        )
    raise ConfigError("HELPDESK_MAIL_BACKEND", f"unknown mail backend {name!r}")
