"""Transactional mail sent through the API (``POST /api/v1/messages``): the message's shape.

A request names a stored template and its data, or gives subject, HTML and text itself.
Each problem is reported with the field it is about (``to[1]``, ``data.name``,
``attachments[0].content``): 400 for a body of the wrong shape, 422 for well-formed values
that cannot be sent. :func:`message_status` is the answer to reading a message back.
Accepting a request (idempotency, the write and the commit) is in
:mod:`helpdesk.outbound.api_acceptance`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from flask import current_app

from helpdesk import addresses
from helpdesk.extensions import db
from helpdesk.html_text import html_to_text
from helpdesk.models import (
    CommitteeAddress,
    MailTemplate,
    OutboundKind,
    OutboundMessage,
    ProviderEvent,
)
from helpdesk.outbound.render import TemplateProblem, render_string
from helpdesk.outbound.transactional import display_from

MAX_RECIPIENTS = 50
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # decoded, all attachments together
MAX_SUBJECT_CHARS = 998
MAX_BODY_CHARS = 2 * 1024 * 1024
MAX_KEY_CHARS = 255
FIELDS = frozenset(
    {"to", "cc", "reply_to", "from", "template", "data", "subject", "html", "text", "attachments"}
)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)
_UNDEFINED = re.compile(r"'([A-Za-z_]\w*)' is undefined")


class RequestProblem(Exception):
    """A request that cannot be accepted; ``field`` names the part that is wrong."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason


@dataclass
class MessageRequest:
    """A validated request, ready to be written."""

    from_addr: str
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    cc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)


def _address_list(body: dict[str, Any], name: str, *, required: bool) -> list[str]:
    value = body.get(name)
    if value is None:
        if required:
            raise RequestProblem(400, name, "is required: an address or a list of addresses")
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RequestProblem(400, name, "must be an address or a list of addresses")
    if required and not values:
        raise RequestProblem(400, name, "needs at least one address")
    result = []
    for i, entry in enumerate(values):
        where = name if isinstance(value, str) else f"{name}[{i}]"
        display, address = addresses.parse_one(entry)
        if not addresses.is_valid(address) or "\n" in entry or "\r" in entry:
            raise RequestProblem(422, where, f"{entry!r} is not a mail address")
        result.append(addresses.format_address(display, address))
    return result


def _string(body: dict[str, Any], name: str, *, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestProblem(400, name, "must be a string")
    if len(value) > limit:
        raise RequestProblem(422, name, f"is longer than {limit} characters")
    return value


def _sender(body: dict[str, Any]) -> str:
    """The From: one of the committees' addresses, or the configured default."""
    default = current_app.config.get("HELPDESK_MAIL_FROM")
    value = body.get("from")
    if value is None:
        if not default:
            raise RequestProblem(422, "from", "is required: no default sender is configured")
        return default
    if not isinstance(value, str):
        raise RequestProblem(400, "from", "must be a string")
    display, address = addresses.parse_one(value)
    key = addresses.normalize(address)
    if default and key == addresses.normalize(parseaddr(default)[1]):
        return addresses.format_address(display, address) if display else default
    known = db.session.execute(
        sa.select(CommitteeAddress).where(CommitteeAddress.address == key)
    ).scalar_one_or_none()
    if known is None or not addresses.is_valid(address):
        raise RequestProblem(422, "from", f"{value!r} is not an address we may send from")
    return display_from(display or known.committee.name, key)


def _render(body: dict[str, Any]) -> tuple[str, str | None, str]:
    """Subject, HTML and text from a stored template and the request's data."""
    name = body["template"]
    if not isinstance(name, str) or not name.strip():
        raise RequestProblem(400, "template", "must be a template name")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise RequestProblem(400, "data", "must be an object")
    template = db.session.scalar(sa.select(MailTemplate).where(MailTemplate.name == name))
    if template is None:
        raise RequestProblem(422, "template", f"there is no template named {name!r}")
    rendered = []
    for part in ("subject", "html", "text"):
        try:
            rendered.append(render_string(getattr(template, part) or "", data))
        except TemplateProblem as problem:
            match = _UNDEFINED.search(str(problem))
            where = f"data.{match.group(1)}" if match else "template"
            raise RequestProblem(422, where, f"template {part}: {problem}") from None
    subject, html, text = rendered
    return subject.strip(), html or None, text


def _attachments(body: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    value = body.get("attachments")
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestProblem(400, "attachments", "must be a list")
    if len(value) > MAX_ATTACHMENTS:
        raise RequestProblem(422, "attachments", f"at most {MAX_ATTACHMENTS} attachments")
    result, total = [], 0
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        if not isinstance(item, dict):
            raise RequestProblem(400, where, "must be an object with filename and content")
        filename = item.get("filename")
        if not isinstance(filename, str) or not filename.strip() or len(filename) > 255:
            raise RequestProblem(400, f"{where}.filename", "must be a name of 1-255 characters")
        if any(c in filename for c in "/\\\r\n\0"):
            raise RequestProblem(422, f"{where}.filename", "must not contain / \\ or line breaks")
        content_type = item.get("content_type", "application/octet-stream")
        if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
            raise RequestProblem(422, f"{where}.content_type", "must be a type/subtype")
        content = item.get("content")
        if not isinstance(content, str):
            raise RequestProblem(400, f"{where}.content", "must be base64 text")
        if len(content) > MAX_ATTACHMENT_BYTES * 4 // 3 + 4:
            raise RequestProblem(422, "attachments", f"over {MAX_ATTACHMENT_BYTES} bytes")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise RequestProblem(422, f"{where}.content", "is not valid base64") from None
        total += len(data)
        if total > MAX_ATTACHMENT_BYTES:
            raise RequestProblem(
                422, "attachments", f"together over {MAX_ATTACHMENT_BYTES} bytes decoded"
            )
        result.append((filename.strip(), content_type.lower(), data))
    return result


def parse_request(body: Any) -> MessageRequest:
    """Validate a request body; raise RequestProblem naming the first wrong field."""
    if not isinstance(body, dict):
        raise RequestProblem(400, "body", "must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise RequestProblem(
            400, unknown[0], f"unknown field; fields are {', '.join(sorted(FIELDS))}"
        )
    to = _address_list(body, "to", required=True)
    cc = _address_list(body, "cc", required=False)
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise RequestProblem(422, "to", f"at most {MAX_RECIPIENTS} recipients (to and cc)")
    reply_to = _address_list(body, "reply_to", required=False)
    if len(reply_to) > 1:
        raise RequestProblem(422, "reply_to", "one address only")
    from_addr = _sender(body)
    if "template" in body:
        direct = sorted({"subject", "html", "text"} & set(body))
        if direct:
            raise RequestProblem(400, direct[0], "give either a template or subject/html/text")
        subject, html, text = _render(body)
    else:
        if "data" in body:
            raise RequestProblem(400, "data", "is only used with a template")
        subject = _string(body, "subject", limit=MAX_SUBJECT_CHARS)
        html = _string(body, "html", limit=MAX_BODY_CHARS)
        text = _string(body, "text", limit=MAX_BODY_CHARS)
        if not subject or not subject.strip():
            raise RequestProblem(400, "subject", "is required (or give a template)")
        if not (html and html.strip()) and not (text and text.strip()):
            raise RequestProblem(400, "text", "give text, html or both")
        subject = subject.strip()
    if "\n" in subject or "\r" in subject:
        raise RequestProblem(422, "subject", "must be one line")
    if not subject:
        raise RequestProblem(422, "subject", "is empty")
    return MessageRequest(
        from_addr=from_addr,
        to=to,
        cc=cc,
        reply_to=reply_to[0] if reply_to else None,
        subject=subject,
        html=html or None,
        text=text if text and text.strip() else html_to_text(html or ""),
        attachments=_attachments(body),
    )


def message_status(user_id: int, message_id: int) -> dict[str, Any] | None:
    """A message sent through the API by ``user_id``, with its provider events; else None."""
    row = db.session.scalar(
        sa.select(OutboundMessage).where(
            OutboundMessage.id == message_id,
            OutboundMessage.api_user_id == user_id,
            OutboundMessage.kind == OutboundKind.TRANSACTIONAL,
        )
    )
    if row is None:
        return None
    events = db.session.execute(
        sa.select(
            ProviderEvent.event,
            ProviderEvent.email,
            ProviderEvent.occurred_at,
            ProviderEvent.payload,
        )
        .where(ProviderEvent.outbound_message_id == row.id)
        .order_by(ProviderEvent.occurred_at, ProviderEvent.id)
    ).all()
    return {
        "id": row.id,
        "status": row.status.value,
        "provider_id": row.provider_id,
        "message_id": row.message_id,
        "from": row.from_addr,
        "to": row.to,
        "cc": row.cc,
        "subject": row.subject,
        "error": row.error,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "events": [
            {
                "event": event,
                "email": email,
                "occurred_at": occurred_at.isoformat() if occurred_at else None,
                **({"reason": payload["reason"]} if payload.get("reason") else {}),
                **({"type": payload["type"]} if payload.get("type") else {}),
            }
            for event, email, occurred_at, payload in events
        ],
    }
