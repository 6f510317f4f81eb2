"""Attachment filenames: decoded from RFC 2231, RFC 2047 or raw bytes, then made safe."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from email.message import Message
from email.utils import decode_params
from functools import lru_cache

from helpdesk.inbound.charsets import decode_text
from helpdesk.inbound.headers import decode_words, raw_header, raw_text, unfold

MAX_FILENAME = 150
_MAX_EXTENSION = 16
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/news": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "message/rfc822-headers": ".txt",
    "text/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/jpeg": ".jpg",
    "application/pgp-signature": ".asc",
    "application/pgp-encrypted": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/ms-tnef": ".dat",
}
# Characters Windows refuses in names, plus both path separators.
_UNSAFE = re.compile(r'[<>:"|?*/\\]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[/\\]")


def decode_filename(part: Message, hint: str | None = None) -> str | None:
    """The part's filename decoded from RFC 2231, RFC 2047 or raw 8-bit, or None."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = raw_header(part, header)
        if raw is None:
            continue
        value = _param(raw, param)
        if value is None:
            continue
        if isinstance(value, tuple):
            charset, _language, text = value
            name = decode_text(_one_byte_per_char(text), charset or None)[0]
        else:
            name = value if value.isascii() else raw_text(value, hint)
        name = decode_words(unfold(name)).strip()
        if name:
            return name
    return None


def _one_byte_per_char(text: str) -> bytes:
    """The bytes of an RFC 2231 value (%-escapes already turned into one char per byte)."""
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _param(raw: str, wanted: str) -> str | tuple[str, str, str] | None:
    """One parameter of a structured header; RFC 2231 continuations joined.

    Returns a plain string, or (charset, language, text) when the value is RFC 2231
    encoded, ``text`` holding one character per byte.
    """
    params = [("", "")]
    for item in _split_params(raw)[1:]:
        name, sep, value = item.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        if name == wanted or name.startswith(wanted + "*"):
            params.append((name, value.strip()))
    if len(params) == 1:
        return None
    try:
        decoded = decode_params(params)
    except (ValueError, TypeError, IndexError):
        return None
    values = [value for name, value in decoded[1:] if name == wanted]
    # RFC 6266: the extended (RFC 2231) form wins over a plain fallback.
    for value in values:
        if isinstance(value, tuple):
            charset, language, text = value
            return (charset or "", language or "", _unquote(text))
    return _unquote(values[0]) if values else None


def _split_params(raw: str) -> list[str]:
    """Split a structured header on ";" outside double quotes."""
    items, current, quoted, escaped = [], [], False, False
    for char in raw:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


def _unquote(value: str) -> str:
    """Strip one level of double quotes and backslash escapes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def safe_filename(name: str | None, content_type: str) -> str:
    """A filename safe to store and offer for download, keeping the extension.

    No path components, control or formatting characters (bidi overrides hide a real
    extension), characters Windows rejects, leading dots or reserved device names;
    length capped. A missing name becomes "attachment" plus the content type's extension.
    """
    cleaned = ""
    if name:
        cleaned = unicodedata.normalize("NFC", name)
        parts = [piece for piece in _SEPARATORS.split(cleaned) if piece.strip(" .")]
        cleaned = parts[-1] if parts else ""
        cleaned = _UNSAFE.sub("_", "".join(_filename_char(char) for char in cleaned))
        cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    if not cleaned:
        return "attachment" + extension_for(content_type)
    if _WINDOWS_RESERVED.match(cleaned):
        cleaned = "_" + cleaned
    if len(cleaned) > MAX_FILENAME:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and stem and 0 < len(extension) <= _MAX_EXTENSION and " " not in extension:
            cleaned = stem[: MAX_FILENAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            cleaned = cleaned[:MAX_FILENAME].rstrip(" .")
    return cleaned


def _filename_char(char: str) -> str:
    """Spaces of any kind become " "; control, format and separator characters go."""
    category = unicodedata.category(char)
    if category == "Zs":
        return " "
    if category[0] == "C" or category in ("Zl", "Zp"):
        return ""
    return char


def extension_for(content_type: str) -> str:
    """The usual filename extension for a content type (".bin" when unknown)."""
    if content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    return _mime_types().guess_extension(content_type) or ".bin"


def content_type_for(filename: str) -> str:
    """A content type guessed from a filename (application/octet-stream when unknown)."""
    guessed, _encoding = _mime_types().guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


@lru_cache(maxsize=1)
def _mime_types() -> mimetypes.MimeTypes:
    """Python's built-in type table only, so results do not depend on the host's files."""
    return mimetypes.MimeTypes()
