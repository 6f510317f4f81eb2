"""Building v3 Mail Send request bodies from a batch, split to fit the API's limits.

One personalization per recipient carries its addresses, substitutions, headers and
custom_args; everything shared (from, subject, content, attachments, headers, categories)
is sent once per request. A request holds at most 1,000 personalizations and 1,000
addresses (to + cc + bcc), each address at most once, and its JSON body stays under
30 MB; a batch that does not fit is split into several requests.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from email.header import Header
from typing import Any

from helpdesk.outbound.backends.interface import OutgoingBatch, Recipient
from helpdesk.outbound.backends.validation import InvalidMail, parse_address

MAX_PERSONALIZATIONS = 1000
MAX_ADDRESSES = 1000
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SUBSTITUTIONS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255

# The API refuses display names containing these; the name keeps its words without them.
_NAME_SEPARATORS = re.compile(r"\s*[;,]\s*")


def _json_size(value: Any) -> int:
    # The same serialisation the sendgrid client uses (json.dumps defaults, ASCII only),
    # so sizes add up to exactly the body that is sent.
    return len(json.dumps(value))


def sendgrid_address(formatted: str) -> dict[str, str]:
    """``{"email": ..., "name": ...}`` for a formatted address, the name made acceptable."""
    name, address = parse_address(formatted)
    name = " ".join(_NAME_SEPARATORS.sub(" ", name).split())
    return {"email": address, "name": name} if name else {"email": address}


def header_value(value: str) -> str:
    """A header value as the API wants it: non-ASCII text as RFC 2047 encoded words."""
    if value.isascii():
        return value
    return " ".join(Header(value, "utf-8").encode().split())


def shared_fields(batch: OutgoingBatch) -> dict[str, Any]:
    """The body of every request for ``batch``, without personalizations."""
    if len(batch.categories) > MAX_CATEGORIES:
        raise InvalidMail(f"SendGrid takes at most {MAX_CATEGORIES} categories")
    for category in batch.categories:
        if len(category) > MAX_CATEGORY_LENGTH:
            raise InvalidMail(f"category {category[:40]!r}... is over {MAX_CATEGORY_LENGTH} chars")
    body: dict[str, Any] = {"from": sendgrid_address(batch.from_addr), "subject": batch.subject}
    if batch.reply_to:
        body["reply_to"] = sendgrid_address(batch.reply_to)
    content = []
    if batch.text:
        content.append({"type": "text/plain", "value": batch.text})
    if batch.html:
        content.append({"type": "text/html", "value": batch.html})
    body["content"] = content
    if batch.attachments:
        body["attachments"] = [
            {
                "content": base64.b64encode(bytes(a.data)).decode("ascii"),
                "filename": a.filename,
                "type": a.content_type,
                "disposition": "attachment",
            }
            for a in batch.attachments
        ]
    if batch.headers:
        body["headers"] = {name: header_value(v) for name, v in batch.headers.items()}
    if batch.categories:
        body["categories"] = list(batch.categories)
    return body


def personalization(recipient: Recipient) -> tuple[dict[str, Any], list[str]]:
    """One recipient's personalization and its (lower-cased) addresses, each once."""
    seen: set[str] = set()
    result: dict[str, Any] = {}
    for kind in ("to", "cc", "bcc"):
        entries = []
        for formatted in getattr(recipient, kind):
            entry = sendgrid_address(formatted)
            key = entry["email"].lower()
            # The API refuses an address twice in a request; it is one mailbox anyway.
            if key not in seen:
                seen.add(key)
                entries.append(entry)
        if entries:
            result[kind] = entries
    if recipient.substitutions:
        if _json_size(recipient.substitutions) > MAX_SUBSTITUTIONS_BYTES:
            raise InvalidMail(f"substitutions are over {MAX_SUBSTITUTIONS_BYTES} bytes")
        result["substitutions"] = dict(recipient.substitutions)
    if recipient.headers:
        result["headers"] = {name: header_value(v) for name, v in recipient.headers.items()}
    if recipient.custom_args:
        if _json_size(recipient.custom_args) > MAX_CUSTOM_ARGS_BYTES:
            raise InvalidMail(f"custom_args are over {MAX_CUSTOM_ARGS_BYTES} bytes")
        result["custom_args"] = dict(recipient.custom_args)
    return result, sorted(seen)


@dataclass
class PlannedRequest:
    """One request's worth of recipients: their batch indices and personalizations."""

    indices: list[int] = field(default_factory=list)
    personalizations: list[dict[str, Any]] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)
    size: int = 0

    def body(self, shared: dict[str, Any]) -> dict[str, Any]:
        """The JSON body to post."""
        return {"personalizations": self.personalizations, **shared}


def plan_requests(
    shared: dict[str, Any],
    entries: list[tuple[int, dict[str, Any], list[str]]],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> tuple[list[PlannedRequest], dict[int, str]]:
    """Pack (index, personalization, addresses) into requests; refuse what cannot fit.

    Each entry goes into the first open request with room for it and none of its
    addresses, so requests stay full and a repeated address moves to another request.
    """
    base = _json_size({"personalizations": [], **shared})
    refused: dict[int, str] = {}
    if base + 2 > max_body_bytes:
        message = f"the shared content alone is {base} bytes, over the {max_body_bytes} limit"
        return [], {index: message for index, _, _ in entries}
    requests: list[PlannedRequest] = []
    open_requests: list[PlannedRequest] = []
    for index, entry, addresses in entries:
        size = _json_size(entry)
        if len(addresses) > MAX_ADDRESSES or base + size > max_body_bytes:
            refused[index] = "this recipient alone does not fit in one SendGrid request"
            continue
        target = None
        for request in open_requests:
            separator = 2 if request.personalizations else 0
            if (
                len(request.personalizations) < MAX_PERSONALIZATIONS
                and len(request.addresses) + len(addresses) <= MAX_ADDRESSES
                and request.size + separator + size <= max_body_bytes
                and request.addresses.isdisjoint(addresses)
            ):
                target = request
                break
        if target is None:
            target = PlannedRequest(size=base)
            requests.append(target)
            open_requests.append(target)
        target.size += (2 if target.personalizations else 0) + size
        target.indices.append(index)
        target.personalizations.append(entry)
        target.addresses.update(addresses)
        if (
            len(target.personalizations) >= MAX_PERSONALIZATIONS
            or len(target.addresses) >= MAX_ADDRESSES
        ):
            open_requests.remove(target)
    return requests, refused
