"""Attachments of a parsed mail: payload bytes, attached messages, inline images, TNEF."""

from __future__ import annotations

import binascii
import hashlib
import logging
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Compat32
from functools import cached_property

from tnefparse import TNEF

from helpdesk.inbound.charsets import decode_header_bytes
from helpdesk.inbound.filenames import content_type_for, decode_filename, safe_filename
from helpdesk.inbound.headers import decode_words, raw_header, raw_text, unfold

log = logging.getLogger(__name__)

_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})


class _VerbatimHeaders(Compat32):
    """Write header fields back with their original folding instead of re-folding them.

    Re-folding is slow (most of the cost of flattening a bounce) and changes the
    attached message for no benefit. Only line ends are made uniform.
    """

    def fold_binary(self, name: str, value: object) -> bytes:
        """The field as it arrived: name, value with its original folding, newline."""
        value = _LINE_BREAK.sub(self.linesep, str(value))
        return f"{name}: {value}{self.linesep}".encode("utf-8", "surrogateescape")


# Attached messages are written with CRLF line ends, as mail is on the wire.
_VERBATIM = _VerbatimHeaders(linesep="\r\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class ParsedAttachment:
    """One attachment (every MIME leaf that is not the chosen body) with its bytes."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the data: the attachment's key in the content store."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        """Length of the data in bytes."""
        return len(self.data)


def attachment_from_part(part: Message, hint: str | None = None) -> list[ParsedAttachment]:
    """The attachment(s) a MIME leaf becomes: itself, or the files inside a winmail.dat."""
    content_type = part.get_content_type()
    data = part_bytes(part)
    name = decode_filename(part, hint)
    if content_type in ("message/rfc822", "message/global") and name is None:
        name = _subject_name(part, hint)
    filename = safe_filename(name, content_type)
    if content_type in ("message/rfc822", "message/global") and not filename.lower().endswith(
        ".eml"
    ):
        filename = safe_filename(filename + ".eml", content_type)
    content_id = _content_id(part)
    disposition = part.get_content_disposition()
    attachment = ParsedAttachment(
        filename=filename,
        content_type=content_type,
        data=data,
        content_id=content_id,
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    )
    if content_type in _TNEF_TYPES or filename.lower() == "winmail.dat":
        unpacked = unpack_tnef(data)
        if unpacked:
            return unpacked
    return [attachment]


def part_bytes(part: Message) -> bytes:
    """The decoded payload of a leaf part; encapsulated messages come back as mail bytes."""
    if part.is_multipart():
        return _flatten(part, part.get_payload())
    # decode=True never applies the declared charset, which can be anything at all.
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return b""
    cte = _transfer_encoding(part)
    if cte != str(part.get("content-transfer-encoding", "")).lower():
        # The stdlib only knows exact spellings and returns "Quoted Printable" or
        # "base64;" bodies still encoded.
        if cte == "base64":
            return _lenient_base64(data)
        if cte == "quoted-printable":
            return quopri.decodestring(data)
    return data


def _transfer_encoding(part: Message) -> str:
    """The Content-Transfer-Encoding token, forgiving spacing, case and stray ";"."""
    value = str(part.get("content-transfer-encoding", "")).split(";", 1)[0].strip().lower()
    return re.sub(r"[\s_]+", "-", value)


def _lenient_base64(raw: bytes) -> bytes:
    """Base64 as mail clients decode it: ignore junk, stop at padding, repair length."""
    data = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw).split(b"=", 1)[0]
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def _flatten(part: Message, payload: list) -> bytes:
    """Serialise an encapsulated message (or DSN header blocks) back to bytes."""
    chunks = []
    for inner in payload:
        if not isinstance(inner, Message):
            continue
        try:
            chunks.append(inner.as_bytes(policy=_VERBATIM))
        except (LookupError, UnicodeError, ValueError, TypeError, RecursionError) as error:
            # A nested part whose declared charset cannot re-encode its body; keep
            # the headers and the raw body text rather than lose the whole message.
            log.info("re-serialising a %s part failed: %s", part.get_content_type(), error)
            chunks.append(_headers_and_body(inner))
    # Each DSN field block already ends with its blank line.
    return b"".join(chunks)


def _headers_and_body(message: Message) -> bytes:
    """A crude flattening that cannot fail: raw headers, blank line, raw body."""
    head = "".join(f"{name}: {value}\r\n" for name, value in message.raw_items())
    if message.is_multipart():
        tail = b"".join(
            _headers_and_body(sub) for sub in message.get_payload() if isinstance(sub, Message)
        )
    else:
        tail = part_bytes(message)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + tail


def _subject_name(part: Message, hint: str | None) -> str | None:
    """A filename for an attached message: its subject, when it has one."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        for name, value in payload[0].raw_items():
            if name.lower() == "subject":
                subject = decode_words(unfold(raw_text(value, hint))).strip()
                return subject or None
    return None


def _content_id(part: Message) -> str | None:
    """The Content-ID without angle brackets, or None."""
    raw = raw_header(part, "content-id")
    if raw is None:
        return None
    value = unfold(raw_text(raw)).strip().strip("<>").strip()
    return value or None


def unpack_tnef(data: bytes) -> list[ParsedAttachment]:
    """The files inside a TNEF (winmail.dat) blob; empty when it holds none or is unreadable."""
    try:
        tnef = TNEF(data, do_checksum=False)
        found = [(item.long_filename(), item.data) for item in tnef.attachments]
    except Exception as error:
        # tnefparse raises anything from IndexError to UnicodeDecodeError on bad input.
        log.info("winmail.dat could not be unpacked: %r", error)
        return []
    if not found or any(not isinstance(payload, bytes) or not payload for _, payload in found):
        # A truncated stream yields nameless, empty entries; keep the original instead.
        return []
    attachments = []
    for name, payload in found:
        filename = safe_filename(_tnef_name(name), "application/octet-stream")
        attachments.append(
            ParsedAttachment(
                filename=filename, content_type=content_type_for(filename), data=payload
            )
        )
    return attachments


def _tnef_name(name: object) -> str:
    """TNEF names come as str or as bytes in the sender's code page."""
    if isinstance(name, bytes):
        return decode_header_bytes(name.rstrip(b"\x00"))
    return str(name or "").strip("\x00")
