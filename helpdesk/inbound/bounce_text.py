"""The prose of a bounce: its notification text and the returned copy of our mail.

Old MTAs put everything in one text: a notice for people, then (after a marker such as
"----- Unsent message follows -----") the headers of the mail that failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from html import unescape

from helpdesk.inbound.bounces import (
    ORIGINAL_HEADERS_TYPES,
    ORIGINAL_MESSAGE_TYPES,
    part_text,
    report_parts,
)

# Enough for any notification; the returned copy of a large mail is not worth reading.
MAX_TEXT = 64 * 1024

_ORIGINAL_MARKER = re.compile(
    r"original message|returned message|unsent message|undelivered message"
    r"|copy of (?:the |your )?(?:original )?(?:message|mail|e-?mail)"
    r"|message headers? follows?|headers? of (?:the |your )?(?:original |returned )?message"
    r"|original headers|mail headers follow|returned mail follows|message text follows"
    r"|bounced e-?mail|rejected message|content of the original",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(
    r"^(?:Received|Return-Path|Delivered-To|DKIM-Signature|X-Received|Message-I[dD]|Date"
    r"|From|To|Subject|Reply-To|X-Mailer)\s*:\s*\S",
    re.IGNORECASE,
)
_TRACE_HEADER = re.compile(
    r"^(?:Received|Return-Path|Delivered-To|DKIM-Signature|X-Received)\s*:", re.IGNORECASE
)


@dataclass
class BounceText:
    """A bounce's text split in two."""

    notification: str
    original: str


# -- the text -------------------------------------------------------------------------


def notification_text(message: Message) -> str:
    """The human-readable text of a bounce (text parts outside the returned copy)."""
    if not message.is_multipart():
        return _leaf_text(message)[:MAX_TEXT]
    chunks = []
    for part in report_parts(message):
        ctype = part.get_content_type()
        if part.is_multipart() or ctype in ORIGINAL_MESSAGE_TYPES | ORIGINAL_HEADERS_TYPES:
            continue
        # A multipart whose boundary is missing arrives as one text leaf.
        if ctype.startswith(("text/", "message/", "multipart/")):
            chunks.append(_leaf_text(part))
    return "\n\n".join(chunks)[:MAX_TEXT]


def _leaf_text(part: Message) -> str:
    text = part_text(part)
    if part.get_content_type() == "text/html":
        text = unescape(re.sub(r"(?is)<(script|style).*?</\1>|<br\s*/?>|</p>|<[^>]+>", _tag, text))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _tag(match: re.Match[str]) -> str:
    tag = match.group(0).lower()
    return "\n" if tag.startswith(("<br", "</p")) else ""


def split_original(text: str) -> BounceText:
    """Split a notification from the copy of the returned mail that follows it."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _ORIGINAL_MARKER.search(stripped) and _looks_like_marker(stripped):
            return BounceText("\n".join(lines[:index]), "\n".join(lines[index + 1 :]))
        if _starts_header_block(lines, index):
            return BounceText("\n".join(lines[:index]), "\n".join(lines[index:]))
    return BounceText(text, "")


def _starts_header_block(lines: list[str], index: int) -> bool:
    # Trace headers only exist in a copied mail; a short "Subject:/Date:" summary inside
    # the notification must not end it, so other headers need a block of three.
    if not _HEADER_LINE.match(lines[index]):
        return False
    if _TRACE_HEADER.match(lines[index]):
        return True
    block = 0
    for line in lines[index : index + 3]:
        if _HEADER_LINE.match(line) or (block and line[:1] in (" ", "\t")):
            block += 1
    return block >= 3


def _looks_like_marker(line: str) -> bool:
    # A separator line, not a sentence that happens to mention the original message.
    return (
        line[:1] in "-=_*#[(<"
        or line.endswith((":", "-", "=", "*", "#", ">"))
        or (len(line) < 60 and "follow" in line.lower())
    )


def original_headers(message: Message, original_text: str) -> Message:
    """Headers of the returned mail: the attached copy if any, else the quoted text."""
    for part in report_parts(message):
        ctype = part.get_content_type()
        if ctype in ORIGINAL_MESSAGE_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype in ORIGINAL_HEADERS_TYPES:
            return HeaderParser().parsestr(part_text(part).lstrip())
    start = first_header_line(original_text)
    return HeaderParser().parsestr(original_text[start:] if start is not None else "")


def first_header_line(text: str) -> int | None:
    """Offset of the first header line in a quoted mail, skipping an mbox "From " line."""
    match = re.search(r"^(?:From |[\w-]+:)", text, re.MULTILINE)
    if match and text[match.start() :].startswith("From "):
        # An mbox separator line is not a header.
        newline = text.find("\n", match.start())
        return newline + 1 if newline >= 0 else None
    return match.start() if match else None
