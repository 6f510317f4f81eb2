"""Building raw test mails."""

from __future__ import annotations

import email
import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from helpdesk.database import utcnow

_serial = itertools.count(1)


def make_mail(
    *,
    sender: str = "Sam Speaker <sam@example.net>",
    to: str = "program@conference.test",
    cc: str | None = None,
    subject: str | None = None,
    body: str = "Hello, can I move my talk to Thursday?\n",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    """A raw RFC 5322 mail; every call gets a fresh Message-ID unless one is given."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject if subject is not None else f"Question {next(_serial)}"
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id or make_msgid(domain="example.net")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def message_id_of(raw: bytes) -> str:
    """The Message-ID of a raw mail, without angle brackets."""
    return email.message_from_bytes(raw)["Message-ID"].strip().strip("<>")
