"""Checks, made before anything is sent, that find the copies no backend could send.

A malformed copy fails alone, with a message that says what is wrong, and the rest of the
batch still goes out. The same rules hold for every backend, so a batch that the files
backend accepts in development is not refused by SendGrid in production.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import parseaddr

from helpdesk.addresses import is_valid
from helpdesk.outbound.backends.interface import (
    Outcome,
    OutgoingBatch,
    Recipient,
    RecipientResult,
    same_outcome,
)
from helpdesk.outbound.backends.substitution import substitute

# Set by the backends themselves from the batch's fields, or reserved by SendGrid (its API
# refuses x-sg-id, x-sg-eid, received, dkim-signature, content-type,
# content-transfer-encoding, to, from, subject, reply-to, cc and bcc in `headers`).
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
    }
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable US-ASCII except ":" (RFC 5322 ftext)
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
_ANGLE_ADDRESS = re.compile(r"^(?P<name>.*?)\s*<(?P<address>[^<>]*)>\s*$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidMail(ValueError):
    """A batch or a copy that no backend can send; the message says why."""


def parse_address(formatted: str) -> tuple[str, str]:
    """Split ``"Name <a@b>"`` (or a bare ``a@b``) into (name, address); raise InvalidMail.

    An unquoted comma in the name (``Doe, John <j@x>``) is taken as part of the name, since
    each string holds exactly one address; RFC 2047 encoded names are decoded.
    """
    if not isinstance(formatted, str):
        raise InvalidMail(f"{formatted!r} is not an address string")
    if _CONTROL.search(formatted):
        raise InvalidMail(f"{formatted!r} contains a line break or control character")
    match = _ANGLE_ADDRESS.match(formatted.strip())
    if match:
        name, address = match.group("name").strip(), match.group("address").strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
    else:
        name, address = parseaddr(formatted.strip())
        if address != formatted.strip():
            name, address = "", formatted.strip()
    if "=?" in name:
        try:
            name = str(make_header(decode_header(name)))
        except (LookupError, UnicodeDecodeError, ValueError):
            raise InvalidMail(f"{formatted!r} has a badly encoded name") from None
    return name, _ascii_address(formatted, address)


def _ascii_address(formatted: str, address: str) -> str:
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        # Internationalised domains travel as their ASCII (punycode) form.
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidMail(f"{formatted!r} has an invalid domain") from None
        address = f"{local}@{domain}"
    if not address.isascii():
        raise InvalidMail(f"{formatted!r}: non-ASCII mailbox names (SMTPUTF8) are not supported")
    if not is_valid(address):
        raise InvalidMail(f"{formatted!r} is not a valid mail address")
    return address


def check_header(name: object, value: object) -> None:
    """Raise InvalidMail unless ``name: value`` is a header a caller may set."""
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        raise InvalidMail(f"{name!r} is not a valid header name")
    if name.lower() in RESERVED_HEADERS:
        raise InvalidMail(f"header {name} is set from the batch's fields and may not be given")
    if not isinstance(value, str):
        raise InvalidMail(f"header {name} must be a string, not {type(value).__name__}")
    if _CONTROL.search(value.replace("\t", " ")):
        raise InvalidMail(f"header {name} contains a line break or control character")


def _check_string_map(what: str, values: object, *, empty_keys: bool = False) -> None:
    if not isinstance(values, dict):
        raise InvalidMail(f"{what} must be a dict of strings")
    for key, value in values.items():
        if not isinstance(key, str) or (not key and not empty_keys):
            raise InvalidMail(f"{what} has an invalid key {key!r}")
        if not isinstance(value, str):
            raise InvalidMail(f"{what} value for {key!r} must be a string")


def check_batch(batch: OutgoingBatch) -> None:
    """Raise InvalidMail when something shared by every copy is malformed."""
    parse_address(batch.from_addr)
    if batch.reply_to is not None:
        parse_address(batch.reply_to)
    if not isinstance(batch.subject, str) or not isinstance(batch.text, str):
        raise InvalidMail("subject and text must be strings")
    if batch.html is not None and not isinstance(batch.html, str):
        raise InvalidMail("html must be a string or None")
    if not batch.text and not batch.html:
        raise InvalidMail("the mail has neither text nor html content")
    _check_string_map("headers", batch.headers)
    for name, value in batch.headers.items():
        check_header(name, value)
        if name.lower() == "message-id" and len(batch.recipients) > 1:
            raise InvalidMail("a shared Message-ID would repeat; set it per recipient")
    for attachment in batch.attachments:
        if not isinstance(attachment.filename, str) or not attachment.filename.strip():
            raise InvalidMail("an attachment has no file name")
        if _CONTROL.search(attachment.filename):
            raise InvalidMail(f"attachment name {attachment.filename!r} has a control character")
        if not isinstance(attachment.content_type, str) or not _CONTENT_TYPE.match(
            attachment.content_type
        ):
            raise InvalidMail(
                f"attachment {attachment.filename!r}: invalid type {attachment.content_type!r}"
            )
        if not isinstance(attachment.data, bytes | bytearray | memoryview):
            raise InvalidMail(f"attachment {attachment.filename!r} data must be bytes")
    if not all(isinstance(category, str) and category for category in batch.categories):
        raise InvalidMail("categories must be non-empty strings")


def check_recipient(batch: OutgoingBatch, recipient: Recipient) -> None:
    """Raise InvalidMail when one copy is malformed (the batch itself being valid)."""
    if not isinstance(recipient.to, list) or not recipient.to:
        raise InvalidMail("a copy needs at least one To address")
    for kind in ("cc", "bcc"):
        if not isinstance(getattr(recipient, kind), list):
            raise InvalidMail(f"{kind} must be a list of addresses")
    for formatted in [*recipient.to, *recipient.cc, *recipient.bcc]:
        parse_address(formatted)
    _check_string_map("substitutions", recipient.substitutions)
    _check_string_map("custom_args", recipient.custom_args)
    _check_string_map("headers", recipient.headers)
    for name, value in recipient.headers.items():
        check_header(name, value)
    subject = substitute(batch.subject, recipient.substitutions)
    if _CONTROL.search(subject.replace("\t", " ")):
        raise InvalidMail("the subject contains a line break or control character")


def sort_out(batch: OutgoingBatch) -> tuple[list[int], list[RecipientResult]]:
    """Indices of the copies that can be sent, and PERMANENT results for those that cannot."""
    indices = range(len(batch.recipients))
    try:
        check_batch(batch)
    except InvalidMail as error:
        return [], same_outcome(indices, Outcome.PERMANENT, str(error))
    sendable: list[int] = []
    refused: list[RecipientResult] = []
    for index in indices:
        try:
            check_recipient(batch, batch.recipients[index])
        except InvalidMail as error:
            refused.append(RecipientResult(index, Outcome.PERMANENT, None, str(error)))
        else:
            sendable.append(index)
    return sendable, refused
