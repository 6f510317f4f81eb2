"""Raw mail bytes to a typed InboundMail, built from one mail-parser parse.

Everything is read from the ``email.message.Message`` tree mail-parser builds, addresses
and dates with mail-parser's header parsers; the bytes are never parsed a second time.
Malformed mail still parses: what could not be understood is listed in ``defects``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import TypeVar

from mailparser import MailParser
from mailparser.dates import parse_mail_date
from mailparser.exceptions import MailParserError

from helpdesk.html_text import html_to_text
from helpdesk.inbound.attachments import ParsedAttachment, attachment_from_part, part_bytes
from helpdesk.inbound.charsets import decode_text
from helpdesk.inbound.headers import (
    Address,
    header_value,
    list_id,
    message_ids,
    parse_addresses,
    raw_text,
    unfold,
)
from helpdesk.inbound.layout import Layout, layout

__all__ = ["Address", "InboundMail", "NotMail", "ParsedAttachment", "parse"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# An OLE2 compound file: Outlook's .msg format, which is not RFC 5322 mail.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Real header blocks stay well under this; the largest in the corpus is 200 KB.
_MAX_HEADER_BLOCK = 1 << 20
_BLANK_LINE = re.compile(rb"\r?\n\r?\n|\r\r")
# RFC 5322 obsolete syntax allows white space between a field name and its colon.
_SPACED_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.MULTILINE)
_NEWLINES = re.compile(r"\r\n?")
_BARE_ADDRESS = re.compile(r"\s*<?([^\s<>()\[\]@,;:\"]+@[^\s<>()\[\]@,;:\"]+)>?\s*")


class NotMail(Exception):
    """The input is not mail at all (empty, binary, no header fields); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        """Keep the reason, for the quarantine entry."""
        super().__init__(reason)
        self.reason = reason


@dataclass
class InboundMail:
    """One parsed inbound mail: decoded headers, the chosen body and every attachment."""

    raw: bytes = field(repr=False)
    message: Message = field(repr=False)
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_: Address | None
    sender: Address | None
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    delivered_to: list[str]
    x_original_to: list[str]
    list_id: str | None
    date: datetime | None
    text: str = field(repr=False)
    html: str | None = field(repr=False)
    defects: list[str]
    oversized: bool = False
    # The charset raw 8-bit header bytes were read in (after UTF-8): the body's.
    header_charset: str | None = None
    # The MIME leaves that are not the chosen bodies: the attachments, once decoded.
    attachment_parts: list[Message] = field(default_factory=list, repr=False)

    @cached_property
    def attachments(self) -> list[ParsedAttachment]:
        """Every attachment, decoded when first asked for: a bounce or a duplicate never
        needs its attachments, and decoding them is most of the work for a large mail."""
        found: list[ParsedAttachment] = []
        for part in self.attachment_parts:
            found.extend(attachment_from_part(part, self.header_charset))
        return found

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, decoded; None when absent."""
        values = self.headers(name)
        return values[0] if values else None

    def headers(self, name: str) -> list[str]:
        """Every value of header ``name``, decoded, in order."""
        wanted = name.lower()
        return [
            header_value(value, self.header_charset)
            for key, value in self.message.raw_items()
            if key.lower() == wanted
        ]


class _TreeParser(MailParser):
    """mail-parser building the message tree (with its guard against hostile nesting),
    without its analysis.

    The analysis decodes every body part and attachment and parses every address and
    Received header; the pipeline decodes the parts it needs itself (layout, bodies,
    attachments on demand) and reads addresses and dates with mail-parser's own header
    parsers, so running it would do all that work twice.
    """

    def parse(self) -> _TreeParser:
        """Keep the tree; skip the analysis."""
        return self


def parse(raw: bytes, *, max_size: int | None = None) -> InboundMail:
    """Parse raw RFC 5322 bytes; raise NotMail (only) for input that is not mail.

    Over ``max_size`` bytes only the header block is parsed: the mail is marked
    ``oversized`` and has no body text or attachments.
    """
    raw = bytes(raw)
    reason = _not_mail_reason(raw)
    if reason:
        raise NotMail(reason)
    oversized = max_size is not None and len(raw) > max_size
    parser = _mail_parser(_repair_field_names(_header_block(raw) if oversized else raw))
    message = parser.message
    if message is None or not message.keys():
        raise NotMail("no header fields: this is not an RFC 5322 message")

    headers = _HeaderIndex(message)
    found = Layout() if oversized else layout(message)
    hint = _charset_hint(message, found)
    defects = _defects(parser)
    if oversized:
        defects.append(f"oversized: {len(raw)} bytes is over the {max_size} byte limit")

    text, html = _bodies(found, defects)

    return InboundMail(
        raw=raw,
        message=message,
        message_id=_first(message_ids(unfold(headers.raw_first("message-id", hint)))),
        in_reply_to=message_ids(unfold(" ".join(headers.raw_all("in-reply-to", hint)))),
        references=message_ids(unfold(" ".join(headers.raw_all("references", hint)))),
        subject=header_value(headers.first("subject") or "", hint),
        from_=_first(_addresses(headers, "from", hint)),
        sender=_first(parse_addresses(headers.first("sender"), hint)),
        reply_to=_addresses(headers, "reply-to", hint),
        to=_addresses(headers, "to", hint),
        cc=_addresses(headers, "cc", hint),
        delivered_to=_bare_addresses(headers.all("delivered-to"), hint),
        x_original_to=_bare_addresses(headers.all("x-original-to"), hint),
        list_id=list_id(header_value(headers.first("list-id") or "", hint)),
        date=_date(headers.first("date")),
        text=text,
        html=html,
        defects=defects,
        oversized=oversized,
        header_charset=hint,
        attachment_parts=found.leaves,
    )


def _not_mail_reason(raw: bytes) -> str | None:
    """Why ``raw`` cannot be mail before parsing it, or None."""
    if not raw or raw.isspace():
        return "empty input"
    if raw.startswith(_OLE_MAGIC):
        return "an OLE compound file (Outlook .msg), not RFC 5322 mail"
    return None


def _header_block(raw: bytes) -> bytes:
    """The header block of ``raw`` through its blank line, searched for in the first MiB."""
    end = min(len(raw), _MAX_HEADER_BLOCK)
    match = _BLANK_LINE.search(raw, 0, end)
    return raw[: match.end()] if match else raw[:end]


def _repair_field_names(raw: bytes) -> bytes:
    """Close up "Subject   :" to "Subject:" in the header block (obsolete RFC 5322 syntax)."""
    # The stdlib would take such a field, and every field after it, for body text.
    match = _BLANK_LINE.search(raw)
    end = match.start() if match else len(raw)
    if _SPACED_FIELD_NAME.search(raw, 0, end) is None:
        return raw
    return _SPACED_FIELD_NAME.sub(rb"\1:", raw[:end]) + raw[end:]


def _mail_parser(raw: bytes) -> _TreeParser:
    """Build the message tree with mail-parser; its failures become NotMail."""
    try:
        return _TreeParser.from_bytes(raw)
    except MailParserError as error:
        raise NotMail(f"mail-parser could not parse the message: {error}") from error
    except Exception as error:
        # Hostile bytes must end as NotMail (quarantined with the reason), not a crash.
        log.warning("the stdlib parser failed on %d bytes: %r", len(raw), error)
        raise NotMail(f"the message could not be parsed: {error!r}") from error


class _HeaderIndex:
    """Raw header values by lower-cased name, built in one pass over the message."""

    def __init__(self, message: Message) -> None:
        """Index every raw header of ``message``."""
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._values.setdefault(name.lower(), []).append(str(value))

    def first(self, name: str) -> str | None:
        """The first raw value, or None."""
        values = self._values.get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        """Every raw value, in order."""
        return self._values.get(name, [])

    def raw_first(self, name: str, hint: str | None) -> str:
        """The first value with raw bytes decoded, or ""."""
        value = self.first(name)
        return raw_text(value, hint) if value is not None else ""

    def raw_all(self, name: str, hint: str | None) -> list[str]:
        """Every value with raw bytes decoded."""
        return [raw_text(value, hint) for value in self.all(name)]


def _charset_hint(message: Message, found: Layout) -> str | None:
    """The charset raw 8-bit header bytes are most likely in: the body's declared one."""
    for part in (found.plain, found.html, message):
        if part is not None:
            charset = part.get_content_charset()
            if charset:
                return charset
    return None


def _defects(parser: _TreeParser) -> list[str]:
    """The stdlib parser's defect report, part by part, as text."""
    flat = []
    stack = [parser.message]
    while stack:
        part = stack.pop()
        flat.extend(
            f"{part.get_content_type()}: {type(defect).__name__}" for defect in part.defects
        )
        if part.is_multipart():
            stack.extend(child for child in part.get_payload() if isinstance(child, Message))
    return flat


def _bodies(found: Layout, defects: list[str]) -> tuple[str, str | None]:
    """The body text and the original HTML; text derived from the HTML when there is none."""
    html = _part_text(found.html, defects) if found.html is not None else None
    if found.plain is not None:
        text = _part_text(found.plain, defects)
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    return _NEWLINES.sub("\n", text), html


def _part_text(part: Message, defects: list[str]) -> str:
    """A body part's payload decoded with its charset, noting any fallback."""
    text, note = decode_text(part_bytes(part), part.get_content_charset())
    if note:
        defects.append(f"{part.get_content_type()}: {note}")
    return text


def _addresses(headers: _HeaderIndex, name: str, hint: str | None) -> list[Address]:
    """An address header's mailboxes (its first occurrence), parsed by mail-parser."""
    return parse_addresses(headers.first(name), hint)


def _bare_addresses(values: list[str], hint: str | None) -> list[str]:
    """The addresses (no names) in every value of a header such as Delivered-To."""
    found: list[str] = []
    for value in values:
        # Almost always one bare address; the full address parser is for the rest.
        # Raw 8-bit bytes (kept as surrogate escapes) must go through the decoding path.
        simple = _BARE_ADDRESS.fullmatch(value) if value.isascii() else None
        if simple:
            found.append(simple.group(1))
        else:
            found.extend(address.address for address in parse_addresses(value, hint))
    return found


def _date(raw: str | None) -> datetime | None:
    """The Date header as an aware datetime, read by mail-parser; leniently when it declines."""
    if raw is None:
        return None
    value = parse_mail_date(raw).value
    if value is not None:
        return value
    try:
        value = parsedate_to_datetime(unfold(raw_text(raw)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # A date without a zone says nothing about it; reading it as UTC is the least wrong.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _first(items: list[_T]) -> _T | None:
    """The first item, or None for an empty list."""
    return items[0] if items else None
