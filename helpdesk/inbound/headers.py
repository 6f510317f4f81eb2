"""Reading header values from parsed mail without tripping over bad encodings.

Inbound mail is whatever the internet sends: encoded words in unknown charsets, raw
8-bit bytes, folded lines, headers that appear twice. These helpers turn a header into
plain text or addresses and never raise on malformed input.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr

_WHITESPACE = re.compile(r"\s+")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def header_text(message: Message, name: str) -> str:
    """The first ``name`` header as decoded text with whitespace collapsed; "" if absent."""
    value = message.get(name)
    if value is None:
        return ""
    return decode_text(value)


def decode_text(value: object) -> str:
    """Decode RFC 2047 encoded words and raw 8-bit bytes; never raises."""
    try:
        chunks = decode_header(value if isinstance(value, Header) else str(value))
    except (HeaderParseError, ValueError, LookupError):
        # A broken encoded word: the raw text is still the best we have.
        chunks = [(str(value), None)]
    text = "".join(_chunk_text(chunk, charset) for chunk, charset in chunks)
    return _WHITESPACE.sub(" ", text).strip()


def _chunk_text(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        # compat32 hands raw 8-bit header bytes over as surrogate escapes.
        chunk = chunk.encode("utf-8", "surrogateescape")
        charset = None
    if charset in (None, "unknown-8bit"):
        try:
            return chunk.decode("utf-8")
        except UnicodeDecodeError:
            return chunk.decode("cp1252", "replace")
    try:
        return chunk.decode(charset, "replace")
    except LookupError:
        return chunk.decode("utf-8", "replace")


def address_of(message: Message, name: str) -> tuple[str, str]:
    """(display name, lower-cased address) of the first address in ``name``; "" when absent."""
    value = message.get(name)
    if value is None:
        return "", ""
    display, address = parseaddr(str(value))
    return decode_text(display), address.strip().lower()


def addresses_of(message: Message, name: str) -> list[str]:
    """Every lower-cased address in all ``name`` headers."""
    values = [str(value) for value in message.get_all(name, [])]
    return [address.strip().lower() for _, address in getaddresses(values) if "@" in address]


def message_id_of(value: str) -> str | None:
    """A Message-ID without angle brackets, or None when ``value`` holds none."""
    match = _ANGLE_ID.search(value)
    if match:
        return match.group(1)
    value = value.strip()
    if value and " " not in value and "@" in value:
        return value.strip("<>")
    return None


def list_id(message: Message) -> str | None:
    """The identifier of a List-Id header (``<program.pycon.de>`` -> ``program.pycon.de``)."""
    value = header_text(message, "List-Id")
    if not value:
        return None
    match = re.search(r"<([^<>]+)>", value)
    found = (match.group(1) if match else value).strip().strip("<>").lower()
    return found or None
