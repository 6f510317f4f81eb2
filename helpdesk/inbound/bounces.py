"""Bounce reports: who could not be reached, how permanently, and which mail of ours it was.

Standard delivery status notifications (RFC 3464, ``multipart/report;
report-type=delivery-status``) are parsed field by field here. Bounces from MTAs that
predate DSNs are handled in :mod:`helpdesk.inbound.legacy_bounces`; both produce the same
:class:`BounceReport`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from helpdesk.inbound.headers import display_text, message_id_of

log = logging.getLogger(__name__)

DELIVERY_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
ORIGINAL_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
ORIGINAL_HEADERS_TYPES = frozenset(
    {"text/rfc822-headers", "text/rfc822-header", "message/global-headers"}
)
# A report is never deeply nested; this bounds the walk over hostile MIME trees.
MAX_REPORT_PARTS = 50

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FAILURE_STATUS = re.compile(r"\b([45])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"(?<![\d.])([245]\d\d)(?![\d.])")
_FAILURE_REPLY_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")
_ADDRESS_IN_FIELD = re.compile(r"<?([^\s<>;\"]+@[^\s<>;\"]+?)>?[.,]?$")
# Postfix's address verification reports write "deliverable" and "undeliverable".
_FAILED_ACTIONS = frozenset({"failed", "delayed", "undeliverable"})
_DONE_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


@dataclass
class FailedRecipient:
    """One recipient a mail could not be delivered to."""

    address: str
    status: str | None  # enhanced status code such as 5.1.1
    action: str | None  # failed or delayed (RFC 3464), None when the report has no field
    diagnostic: str | None  # the remote server's words, e.g. "550 5.1.1 No such user"
    permanent: bool  # hard (True) or soft (False) bounce
    reply_code: str | None = None  # SMTP reply code such as 550


@dataclass
class BounceReport:
    """What a bounce says about one of our mails."""

    recipients: list[FailedRecipient]
    # The Message-ID of our original mail, from the embedded headers, without <>.
    original_message_id: str | None
    reporting_mta: str | None = None
    # Which reader named the recipients: "dsn" (status part), "dsn-text" (status fields
    # pasted into prose), "header" (X-Failed-Recipients), "flufl", "text" (the prose),
    # "original" (the returned mail's To) or "ses".
    source: str = "dsn"
    delivered: list[str] = field(default_factory=list)  # recipients reported as delivered


# -- status codes ---------------------------------------------------------------------


def status_code(text: str | None, *, failures_only: bool = False) -> str | None:
    """The first enhanced status code (``5.1.1``) in ``text``, or None.

    In prose, ``failures_only`` skips the ``2.x.x`` codes of a transcript's good steps.
    """
    if not text:
        return None
    match = (_FAILURE_STATUS if failures_only else _STATUS).search(text)
    return ".".join(match.groups()) if match else None


def reply_code(text: str | None, *, failures_only: bool = False) -> str | None:
    """The first SMTP reply code (``550``) in ``text``, or None; see :func:`status_code`."""
    if not text:
        return None
    match = (_FAILURE_REPLY_CODE if failures_only else _REPLY_CODE).search(text)
    return match.group(1) if match else None


def is_permanent(status: str | None, code: str | None, action: str | None) -> bool:
    """Hard or soft: the status class decides (5 = permanent), then the reply code, then
    the action; with no evidence at all a failure is taken as permanent."""
    for evidence in (status, code):
        if evidence and evidence[0] in "45":
            return evidence[0] == "5"
    return action != "delayed"


def best_status(status: str | None, diagnostic: str | None) -> str | None:
    """The report's status, refined by the diagnostic's code when the status is generic.

    Many MTAs write ``5.0.0`` in the Status field and the informative ``5.1.1`` only in
    the remote server's reply.
    """
    detailed = status_code(diagnostic, failures_only=True)
    if status is None:
        return detailed
    if detailed and status.endswith(".0.0") and detailed[0] == status[0]:
        return detailed
    return status


# -- parts ----------------------------------------------------------------------------


def report_parts(message: Message) -> Iterator[Message]:
    """The parts of a report: the top level's children and their children, bounded."""
    if not message.is_multipart():
        return
    count = 0
    stack = list(reversed(message.get_payload()))
    while stack and count < MAX_REPORT_PARTS:
        part = stack.pop()
        if not isinstance(part, Message):
            continue
        count += 1
        yield part
        ctype = part.get_content_type()
        if part.is_multipart() and ctype.startswith("multipart/"):
            stack.extend(reversed(part.get_payload()))


def has_delivery_status(message: Message) -> bool:
    """Whether the mail carries a machine-readable delivery status part."""
    if message.get_content_type() in DELIVERY_STATUS_TYPES:
        return True
    return any(part.get_content_type() in DELIVERY_STATUS_TYPES for part in report_parts(message))


def part_text(part: Message) -> str:
    """The text of a leaf part, decoded; compat32's parsed status blocks are re-joined."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # compat32 parses message/delivery-status into one Message per header block.
        chunks = []
        for block in payload:
            if not isinstance(block, Message):
                continue
            chunks.append("\n".join(f"{name}: {value}" for name, value in block.items()))
            rest = block.get_payload()
            if isinstance(rest, str) and rest.strip():
                chunks.append(rest)
        text = "\n\n".join(chunks)
        return _undo_transfer_encoding(text, part.get("Content-Transfer-Encoding", ""))
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(payload or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _undo_transfer_encoding(text: str, encoding: str) -> str:
    # Encoded status parts were split into fake header blocks by the parser; decode the
    # re-joined text instead.
    encoding = str(encoding).strip().lower()
    try:
        if encoding == "base64":
            data = base64.b64decode("".join(text.split()), validate=False)
            return data.decode("utf-8", "replace")
        if encoding == "quoted-printable":
            return quopri.decodestring(text.encode("utf-8", "replace")).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        log.info("undecodable %s delivery status part", encoding)
    return text


# -- RFC 3464 fields --------------------------------------------------------------------


def status_fields(text: str) -> list[tuple[str, str]]:
    """(lower-cased name, value) pairs of a status part, unfolded; blank lines as ("", "")."""
    fields: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            fields.append(("", ""))
        elif line[0] in " \t" and fields and fields[-1][0]:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip().lower(), value.strip()))
    return fields


def recipient_blocks(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Split a status part into its per-message fields and one dict per recipient.

    Blank lines separate recipients in the RFC, but real reports omit them or break
    lines oddly, so a recipient also starts wherever a second recipient field appears.
    """
    per_message: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for name, value in status_fields(text):
        if not name:
            if current is not None and any(f in current for f in _RECIPIENT_FIELDS):
                current = None
            continue
        if name in _RECIPIENT_FIELDS:
            if current is None or name in current:
                current = {}
                blocks.append(current)
            current[name] = value
        elif current is not None:
            current.setdefault(name, value)
        else:
            per_message.setdefault(name, value)
    return per_message, blocks


def field_address(value: str | None) -> str | None:
    """The address in ``rfc822; someone@example.org`` (type prefix optional), or None."""
    if not value:
        return None
    _, _, address = value.rpartition(";")
    # Not decode_text: status fields are not RFC 2047 text, and the address must stay
    # exactly as it was written to match the mail we sent.
    address = address.strip().strip("'\"")
    match = _ADDRESS_IN_FIELD.search(address)
    if not match:
        return None
    return match.group(1).strip("<>").lower()


def recipient_from_block(block: dict[str, str]) -> FailedRecipient | None:
    """A FailedRecipient for one status block; None for delivered ones and for garbage."""
    # The original recipient is the address we wrote; the final one may be an alias target.
    address = field_address(block.get("original-recipient")) or field_address(
        block.get("final-recipient") or block.get("x-actual-recipient")
    )
    if address is None:
        return None
    action = (block.get("action") or "").strip().lower().split(" ")[0] or None
    diagnostic = _diagnostic(block.get("diagnostic-code"))
    status = best_status(status_code(block.get("status")), diagnostic)
    if action in _DONE_ACTIONS or (status and status.startswith("2")):
        return None
    if action is not None and action not in _FAILED_ACTIONS and status is None:
        return None
    code = reply_code(diagnostic)
    return FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=diagnostic,
        permanent=is_permanent(status, code, action),
        reply_code=code,
    )


def _diagnostic(value: str | None) -> str | None:
    if not value:
        return None
    kind, sep, text = value.partition(";")
    # "smtp; 550 ..." names the diagnostic type; keep only the server's words.
    text = text if sep and " " not in kind.strip() else value
    return display_text(text) or None


def delivered_addresses(text: str) -> list[str]:
    """Recipients a status part reports as delivered, relayed or expanded."""
    _, blocks = recipient_blocks(text)
    done = []
    for block in blocks:
        action = (block.get("action") or "").strip().lower()
        address = field_address(block.get("final-recipient") or block.get("original-recipient"))
        if address and action in _DONE_ACTIONS:
            done.append(address)
    return done


def parse_delivery_status(message: Message) -> BounceReport:
    """Read every delivery status part of a DSN into a BounceReport."""
    parts = [message] if message.get_content_type() in DELIVERY_STATUS_TYPES else []
    parts += [p for p in report_parts(message) if p.get_content_type() in DELIVERY_STATUS_TYPES]
    recipients: list[FailedRecipient] = []
    delivered: list[str] = []
    reporting_mta = None
    seen: set[str] = set()
    for part in parts:
        text = part_text(part)
        per_message, blocks = recipient_blocks(text)
        reporting_mta = reporting_mta or field_address_or_host(per_message.get("reporting-mta"))
        for block in blocks:
            recipient = recipient_from_block(block)
            if recipient and recipient.address not in seen:
                seen.add(recipient.address)
                recipients.append(recipient)
        delivered += delivered_addresses(text)
    return BounceReport(
        recipients=recipients,
        original_message_id=original_message_id(message),
        reporting_mta=reporting_mta,
        source="dsn",
        delivered=delivered,
    )


def field_address_or_host(value: str | None) -> str | None:
    """The name after ``dns;`` in a Reporting-MTA or Remote-MTA field."""
    if not value:
        return None
    return value.rpartition(";")[2].strip() or None


# -- the original message -------------------------------------------------------------


def original_message_id(message: Message) -> str | None:
    """The Message-ID of the returned mail, from its embedded copy or headers, without <>."""
    own = message_id_of(str(message.get("Message-ID", "")))
    for part in report_parts(message):
        ctype = part.get_content_type()
        found = None
        if ctype in ORIGINAL_MESSAGE_TYPES:
            found = _embedded_message_id(part)
        elif ctype in ORIGINAL_HEADERS_TYPES:
            found = _headers_message_id(part_text(part))
        if found and found != own:
            return found
    return None


def message_id_in_text(text: str, exclude: str | None = None) -> str | None:
    """The last ``Message-ID:`` line in a text (the returned mail's copy comes last)."""
    for match in reversed(list(_MESSAGE_ID_LINE.finditer(text))):
        found = message_id_of(match.group(1))
        if found and found != exclude:
            return found
    return None


def _embedded_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = payload[0].get("Message-ID")
        if value is not None:
            return message_id_of(str(value))
        # Some MTAs attach only headers under message/rfc822 and the parser may have
        # stopped at a malformed line; look through the text as a last resort.
        return message_id_in_text(payload[0].as_string())
    if isinstance(payload, str):
        return _headers_message_id(payload)
    return None


def _headers_message_id(text: str) -> str | None:
    headers = HeaderParser().parsestr(text.lstrip())
    value = headers.get("Message-ID")
    if value is not None:
        return message_id_of(str(value))
    return message_id_in_text(text)
