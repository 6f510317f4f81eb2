"""Header values of parsed mail as text: RFC 2047 words, raw 8-bit bytes, folding, ids."""

from __future__ import annotations

import binascii
import functools
import re
from dataclasses import dataclass
from email.errors import MessageError
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses

from mailparser.utils import get_addresses

from helpdesk.inbound.charsets import decode_header_bytes, decode_text

# Encoded text may not contain "?"; spaces are not allowed either but real senders use
# them, so accept them (the match still ends at the first "?=").
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"[ \t]*(?:\r\n|\n|\r)[ \t]*")
_ANGLE_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_BARE_ID = re.compile(r"[^<>\s\"(),;]+@[^<>\s\"(),;]+")
_MAX_ID = 998


@dataclass(frozen=True)
class Address:
    """One mailbox from an address header: display name and address as written, trimmed."""

    name: str
    address: str


def raw_text(value: str | Header, hint: str | None = None) -> str:
    """A raw header value as text, raw 8-bit bytes decoded (UTF-8, else ``hint``, else cp1252)."""
    if isinstance(value, Header):
        # compat32 hands headers with raw 8-bit bytes over as Header objects whose str()
        # replaces those bytes; decode the chunks instead.
        return "".join(
            decode_header_bytes(chunk, hint)
            if charset in (None, "unknown-8bit")
            else decode_text(chunk, charset)[0]
            for chunk, charset in _header_chunks(value)
        )
    if value.isascii():
        return value
    # The parser keeps undecodable bytes as surrogate escapes; turn them back into bytes.
    return decode_header_bytes(value.encode("utf-8", "surrogateescape"), hint)


def _header_chunks(value: Header) -> list[tuple[bytes, str | None]]:
    return [
        (chunk.encode("utf-8", "surrogateescape") if isinstance(chunk, str) else chunk, charset)
        for chunk, charset in decode_header(value)
    ]


def raw_header(part: Message, wanted: str) -> str | None:
    """The first raw value of a header, with undecoded bytes still escaped."""
    for name, value in part.raw_items():
        if name.lower() == wanted:
            return str(value)
    return None


def unfold(value: str) -> str:
    """Join a folded header value onto one line, each fold becoming a single space."""
    return _FOLD.sub(" ", value).strip()


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between adjacent words is dropped.

    Adjacent words in one charset are joined before decoding, because senders split a
    multi-byte character across two words.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_raw: list[str] = []
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        """Decode the run of encoded words collected so far."""
        if not pending:
            return
        data = b"".join(pending)
        if pending_charset in ("utf-8", "utf8") and not _valid_utf8(data):
            # Not really an encoded word (e.g. "=?utf-8?b?not base64?="): keep it as written.
            out.append(" ".join(pending_raw))
        else:
            out.append(decode_text(data, pending_charset)[0])
        pending.clear()
        pending_raw.clear()

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset = match.group(1).split("*", 1)[0].lower()
        if between and (not pending or between.strip()):
            flush()
            out.append(between)
        elif pending and charset != pending_charset:
            flush()
        pending_charset = charset
        pending.append(_word_bytes(match.group(2), match.group(3)))
        pending_raw.append(match.group(0))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _word_bytes(encoding: str, text: str) -> bytes:
    """The bytes carried by one encoded word, decoded leniently."""
    if encoding in "bB":
        data = re.sub(r"[^A-Za-z0-9+/]", "", text)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return binascii.a2b_base64(data + "=" * (-len(data) % 4))
        except binascii.Error:
            return text.encode("ascii", "replace")
    return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)


def header_value(value: str | Header, hint: str | None = None) -> str:
    """A header value fully decoded for display: bytes, folding and encoded words."""
    return decode_words(unfold(raw_text(value, hint)))


def message_ids(value: str) -> list[str]:
    """Every message id in a Message-ID/In-Reply-To/References value, without <>."""
    ids = [found for found in _ANGLE_ID.findall(value) if len(found) <= _MAX_ID]
    if not ids and "<" not in value:
        # Some mailers drop the angle brackets; a bare token with an @ is still an id.
        ids = [found for found in _BARE_ID.findall(value) if len(found) <= _MAX_ID]
    return list(dict.fromkeys(ids))


def list_id(value: str) -> str | None:
    """The list identifier inside a List-Id value's <...>, lower-cased (RFC 2919)."""
    match = _ANGLE_ID.search(value)
    if match:
        return match.group(1).lower()
    bare = value.strip()
    if bare and " " not in bare and "." in bare and len(bare) <= 255:
        return bare.lower()
    return None


def parse_addresses(value: str | Header | None, hint: str | None = None) -> list[Address]:
    """The mailboxes of one raw address header value, names decoded; unusable items dropped."""
    if value is None:
        return []
    text = raw_text(value, hint)
    if len(text) > _CACHED_HEADER_LENGTH:
        return list(_parse_address_text.__wrapped__(text))
    return list(_parse_address_text(text))


# Parsing, classifying and identifying a mail read the same From, To and Cc values, and
# a bounce repeats them in the returned message. (Long lists are parsed every time.)
_CACHED_HEADER_LENGTH = 2000


@functools.lru_cache(maxsize=256)
def _parse_address_text(text: str) -> tuple[Address, ...]:
    try:
        # mail-parser parses the structure before decoding names, so an encoded comma
        # or angle bracket inside a display name cannot split or forge an address.
        pairs = get_addresses(text, decode_names=True)
    except (MessageError, ValueError, LookupError, UnicodeError):
        # Its name decoding refuses some broken encoded words (bad base64 padding);
        # parse without it and decode the names leniently afterwards.
        pairs = getaddresses([text])
    return tuple(_address(name, address) for name, address in pairs if address and address.strip())


def address_from_pair(name: str, address: str) -> Address:
    """An Address from mail-parser's (name, address) pair."""
    return _address(name, address)


def _address(name: str, address: str) -> Address:
    """An Address with the name unfolded and decoded, dropped when it repeats the address."""
    # RFC 2047 forbids encoded words inside quotes, but mailers write them there and
    # every client shows them decoded; the address was already parsed, so this is safe.
    name = decode_words(unfold(name))
    address = address.strip()
    return Address(name="" if name == address else name, address=address)


# -- whole-message helpers (classification reads headers through these) ------------------

_WHITESPACE = re.compile(r"\s+")


def display_text(value: object) -> str:
    """A header value decoded for reading, whitespace collapsed; never raises."""
    return _WHITESPACE.sub(
        " ", header_value(value if isinstance(value, Header) else str(value))
    ).strip()


def header_text(message: Message, name: str) -> str:
    """The first ``name`` header as decoded text with whitespace collapsed; "" if absent."""
    value = message.get(name)
    return "" if value is None else display_text(value)


def address_of(message: Message, name: str) -> tuple[str, str]:
    """(display name, lower-cased address) of the first address in ``name``; "" when absent."""
    value = message.get(name)
    if isinstance(value, str):
        # Classification asks for the same From address several times per mail.
        return _first_address(value)
    return _first_of(parse_addresses(value))


@functools.lru_cache(maxsize=64)
def _first_address(value: str) -> tuple[str, str]:
    return _first_of(parse_addresses(value))


def _first_of(found: list[Address]) -> tuple[str, str]:
    return (found[0].name, found[0].address.lower()) if found else ("", "")


def addresses_of(message: Message, name: str) -> list[str]:
    """Every lower-cased address in all ``name`` headers."""
    return [
        entry.address.lower()
        for value in message.get_all(name, [])
        for entry in parse_addresses(value)
        if "@" in entry.address
    ]


def message_id_of(value: str) -> str | None:
    """The first Message-ID in ``value`` without angle brackets, or None."""
    ids = message_ids(str(value))
    return ids[0] if ids else None


def list_id_of(message: Message) -> str | None:
    """The identifier of a message's List-Id (``<program.pycon.de>`` -> ``program.pycon.de``)."""
    value = header_text(message, "List-Id")
    return list_id(value) if value else None
