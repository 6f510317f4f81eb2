"""Bounces without a machine-readable delivery status: Exim, qmail, Sendmail, Lotus, ...

These are prose written for people. The failed addresses are found, in order of trust:

1. RFC 3464 fields pasted into the text (several MTAs quote them in plain text);
2. an ``X-Failed-Recipients`` header (Exim, Gmail);
3. `flufl.bounce`, Mailman's detectors for specific MTAs;
4. the addresses in the notification text, preferring lines that read like an error;
5. the ``To`` of the returned copy of our mail.

Status codes come from the same line as the address or the lines after it.
"""

from __future__ import annotations

import logging
import re
from email import message_from_string
from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

from helpdesk.addresses import is_valid
from helpdesk.inbound.bounce_text import (
    BounceText,
    first_header_line,
    notification_text,
    original_headers,
    split_original,
)
from helpdesk.inbound.bounces import (
    BounceReport,
    FailedRecipient,
    has_delivery_status,
    is_permanent,
    message_id_in_text,
    original_message_id,
    parse_delivery_status,
    recipient_blocks,
    recipient_from_block,
    reply_code,
    status_code,
)
from helpdesk.inbound.headers import address_of, addresses_of, message_id_of

log = logging.getLogger(__name__)

# How many lines after an address may still describe its failure.
CONTEXT_LINES = 4
# A bounce quoted inside a bounce is read; one quoted inside that is not.
MAX_NESTING = 1

ADDRESS = re.compile(
    r"(?<![\w.+=/-])[a-z0-9][a-z0-9.!#$%&'*+/=?^_`{|}~-]{0,63}"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+",
    re.IGNORECASE,
)
_SKIP_LINE = re.compile(
    r"^\s*(?:>\s*)*(?:from|sender|reply-to|return-path|message-id|in-reply-to|references"
    r"|received|x-[\w-]+|original-envelope-id|envelope-from|mail from)\s*:"
    r"|mail\s+from\s*:?\s*<|envelope-from|please contact|for (?:further )?assistance",
    re.IGNORECASE,
)
_FAILURE_WORDS = re.compile(
    r"unknown|not found|no such|does not exist|doesn't exist|invalid|failed|failure|fatal"
    r"|rejected|refused|denied|blocked|disabled|inactive|unavailable|undeliverable"
    r"|could not|couldn't|cannot|can't|unable|not deliver|full|quota|over ?limit|error"
    r"|timed? ?out|deferred|delayed|expired|unrouteable|unreachable|giving up|bounce"
    r"|permanent|temporar|said:|rcpt to|recipient|suspended|not accept|not permitted",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"Message-ID\s*:\s*<?([^\s<>]+@[^\s<>]+?)>?(?:\s|$)", re.IGNORECASE)
_TEMPORARY_WORDS = re.compile(
    r"temporar|will (?:be )?retr|will try|still trying|not yet been delivered|delayed|deferred"
    r"|retry time(?:out)? (?:exceeded|not reached)|try (?:again )?later"
    r"|warning: (?:could|message)|no action is required",
    re.IGNORECASE,
)
_PERMANENT_WORDS = re.compile(r"permanent|fatal|giving up|given up|gave up", re.IGNORECASE)
# Postmaster is left out: a postmaster address can itself be the one that failed.
_MACHINE_LOCALPARTS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon"})


# -- addresses in prose ---------------------------------------------------------------


def excluded_addresses(message: Message, original: Message) -> set[str]:
    """Addresses that are never the failed recipient: ours and the reporting system's."""
    excluded = set()
    for name in ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Delivered-To"):
        excluded.update(addresses_of(message, name))
    for name in ("From", "Sender", "Reply-To", "Return-Path"):
        excluded.update(addresses_of(original, name))
    return excluded


def is_machine_address(address: str) -> bool:
    """Whether an address belongs to a mail system rather than a person."""
    return address.split("@", 1)[0].lower() in _MACHINE_LOCALPARTS


def prose_recipients(
    text: str, excluded: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(address, context) pairs a notification mentions: those on lines that read like an
    error (or stand alone), and the other, weaker mentions."""
    lines = text.split("\n")
    strong: dict[str, str] = {}
    weak: dict[str, str] = {}
    for index, line in enumerate(lines):
        if "@" not in line or _SKIP_LINE.search(line):
            continue
        for match in ADDRESS.finditer(line):
            address = match.group(0).lower().rstrip(".")
            if address in excluded or is_machine_address(address):
                continue
            if line[: match.start()].lower().endswith(("mailto:", "://")):
                continue
            context = _context(lines, index, address)
            target = strong if _reads_like_failure(line, match) else weak
            target.setdefault(address, context)
    return list(strong.items()), list(weak.items())


def _reads_like_failure(line: str, match: re.Match[str]) -> bool:
    rest = (line[: match.start()] + line[match.end() :]).strip(" \t<>:;,.'\"[]()")
    return not rest or bool(_FAILURE_WORDS.search(line)) or bool(status_code(line))


def _context(lines: list[str], index: int, address: str) -> str:
    # The address's own line and the lines right after it, up to a blank line or a line
    # about another address.
    picked = [lines[index].strip()]
    for line in lines[index + 1 : index + 1 + CONTEXT_LINES]:
        others = {m.group(0).lower() for m in ADDRESS.finditer(line)} - {address}
        if not line.strip() or others:
            break
        picked.append(line.strip())
    return " ".join(picked)


def _recipient_from_prose(address: str, context: str, temporary: bool) -> FailedRecipient:
    # A code next to the address decides; without one, the tone of the whole notice.
    code = reply_code(context, failures_only=True)
    status = status_code(context, failures_only=True)
    permanent = is_permanent(status, code, None) if status or code else not temporary
    return FailedRecipient(
        address=address,
        status=status,
        action="failed" if permanent else "delayed",
        diagnostic=context[:1000] or None,
        permanent=permanent,
        reply_code=code,
    )


# -- putting it together --------------------------------------------------------------


def parse_legacy_bounce(message: Message, *, nested: int = 0) -> BounceReport:
    """Read the failed recipients from a bounce that has no usable delivery status part."""
    text = split_original(notification_text(message))
    original = original_headers(message, text.original)
    excluded = excluded_addresses(message, original) | message_ids_in(
        f"{text.notification}\n{text.original}"
    )
    recipients, source = _valid(_embedded_status_fields(text.notification)), "dsn-text"
    if not recipients:
        recipients = _valid(_failed_recipients_header(message, text.notification))
        source = "header"
    if not recipients:
        recipients, source = _valid(_flufl(message, text.notification, excluded)), "flufl"
    if (
        not recipients
        and nested < MAX_NESTING
        and is_machine_address(address_of(original, "From")[1])
    ):
        # Some providers forward the bounce they received inside their own notice.
        inner = _nested_bounce(text.original, nested + 1)
        if inner is not None and inner.recipients:
            return inner
    if not recipients:
        recipients, source = _prose(text, original, excluded)
    return BounceReport(
        recipients=_valid(recipients),
        original_message_id=_original_id(message, original, text.original),
        source=source,
    )


def _valid(recipients: list[FailedRecipient]) -> list[FailedRecipient]:
    # Heuristic readers sometimes pick up fragments such as "@host" or JSON; drop those.
    return [recipient for recipient in recipients if is_valid(recipient.address)]


def _prose(
    text: BounceText, original: Message, excluded: set[str]
) -> tuple[list[FailedRecipient], str]:
    temporary = is_temporary_notice(text.notification)
    strong, weak = prose_recipients(text.notification, excluded)
    found, source = strong, "text"
    if not found:
        # A bare mention is weaker evidence than the returned mail's own recipients.
        from_original = [(address, "") for address in _original_recipients(original)]
        found, source = (from_original, "original") if from_original else (weak, "text")
    return [_recipient_from_prose(a, c, temporary) for a, c in found], source


def _nested_bounce(original_text: str, nested: int) -> BounceReport | None:
    start = first_header_line(original_text)
    if start is None:
        return None
    inner = message_from_string(original_text[start:])
    if has_delivery_status(inner):
        report = parse_delivery_status(inner)
        if report.recipients:
            return report
    return parse_legacy_bounce(inner, nested=nested)


def is_temporary_notice(text: str) -> bool:
    """Whether a notification speaks of a delay or retry rather than a final failure."""
    return bool(_TEMPORARY_WORDS.search(text)) and not _PERMANENT_WORDS.search(text)


def message_ids_in(text: str) -> set[str]:
    """Message-IDs quoted in a text, lower-cased; they look like addresses but are not."""
    return {match.group(1).lower() for match in _MESSAGE_ID.finditer(text)}


def _embedded_status_fields(text: str) -> list[FailedRecipient]:
    if "recipient" not in text.lower():
        return []
    _, blocks = recipient_blocks(text)
    found = [r for r in map(recipient_from_block, blocks) if r is not None]
    unique: dict[str, FailedRecipient] = {}
    for recipient in found:
        unique.setdefault(recipient.address, recipient)
    return list(unique.values())


def _failed_recipients_header(message: Message, text: str) -> list[FailedRecipient]:
    values = [str(v) for v in message.get_all("X-Failed-Recipients", [])]
    addresses = [a.strip().lower() for _, a in getaddresses(values) if "@" in a]
    contexts = _contexts(text)
    temporary = is_temporary_notice(text)
    return [
        _recipient_from_prose(address, contexts.get(address, ""), temporary)
        for address in dict.fromkeys(addresses)
    ]


def _flufl(message: Message, text: str, excluded: set[str]) -> list[FailedRecipient]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        # A detector choking on odd input must not lose the mail; the prose reader follows.
        log.warning("flufl.bounce failed on a bounce", exc_info=True)
        return []
    contexts = _contexts(text)
    found = {_text(raw): False for raw in temporary} | {_text(raw): True for raw in permanent}
    recipients = []
    for address, is_permanent_failure in sorted(found.items()):
        if "@" not in address or is_machine_address(address) or address in excluded:
            continue
        recipient = _recipient_from_prose(
            address, contexts.get(address, ""), temporary=not is_permanent_failure
        )
        recipients.append(recipient)
    return recipients


def _text(address: bytes | str) -> str:
    # flufl.bounce reports addresses as bytes.
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
    return text.strip().lower()


def _contexts(text: str) -> dict[str, str]:
    strong, weak = prose_recipients(text, set())
    return dict(weak) | dict(strong)


def _original_recipients(original: Message) -> list[str]:
    found = []
    for name in ("To", "Cc"):
        found += [a for a in addresses_of(original, name) if not is_machine_address(a)]
    return list(dict.fromkeys(found))


def _original_id(message: Message, original: Message, original_text: str) -> str | None:
    own = message_id_of(str(message.get("Message-ID", "")))
    found = original_message_id(message)
    if found:
        return found
    value = original.get("Message-ID")
    if value is not None:
        candidate = message_id_of(str(value))
        if candidate and candidate != own:
            return candidate
    return message_id_in_text(original_text, exclude=own)
