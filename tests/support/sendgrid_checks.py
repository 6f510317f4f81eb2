"""The request checks of the SendGrid stand-in, mirroring the v3 Mail Send API's 400s.

Messages follow the API's error list; ``field`` is a dotted path with positions
(``personalizations.3.to.0.email``) as the API reports it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


class ApiError(Exception):
    """A request the API would refuse with 400; ``errors`` is the response's list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


class _Errors:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, field: str | None, message: str) -> None:
        """Record one error in the API's shape."""
        self.errors.append({"message": message, "field": field, "help": _HELP})


def _check_email_object(errors: _Errors, field: str, value: Any, what: str) -> str | None:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        errors.add(field, f"The {what} must be an object with an email (and optional name).")
        return None
    if not _EMAIL.match(value["email"]):
        errors.add(f"{field}.email", "Does not contain a valid address.")
        return None
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or ";" in name or "," in name):
        errors.add(f"{field}.name", "The name may not contain ';' or ','.")
    return value["email"].lower()


def _check_string_map(errors: _Errors, field: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        errors.add(field, "Invalid type. Expected: object, given: " + type(value).__name__ + ".")
        return {}
    for key, item in value.items():
        if not isinstance(item, str):
            errors.add(f"{field}.{key}", "Values must be strings.")
    return value


def _check_headers(errors: _Errors, field: str, value: Any) -> None:
    headers = _check_string_map(errors, field, value)
    for name in headers:
        if name.lower() in RESERVED_HEADERS:
            errors.add(f"{field}.{name}", f"The header {name} is reserved and may not be set.")


def _custom_args_size(value: dict[str, Any]) -> int:
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in value.items())


def _check_personalizations(errors: _Errors, body: dict[str, Any]) -> None:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.add("personalizations", "You must have at least one personalization.")
        return
    if len(personalizations) > MAX_PERSONALIZATIONS:
        errors.add(
            "personalizations",
            "The personalization block is limited to 1000 personalizations per API request. "
            f"You have provided {len(personalizations)} personalizations. Please consider "
            "splitting this into multiple requests and resending your request.",
        )
        return
    seen: set[str] = set()
    total = 0
    message_args = body.get("custom_args") if isinstance(body.get("custom_args"), dict) else {}
    for i, p in enumerate(personalizations):
        field = f"personalizations.{i}"
        if not isinstance(p, dict):
            errors.add(field, "Each personalization must be an object.")
            continue
        if not isinstance(p.get("to"), list) or not p["to"]:
            errors.add(
                f"{field}.to", "The to parameter is required for all personalization objects."
            )
        for kind in ("to", "cc", "bcc"):
            entries = p.get(kind, [])
            if not isinstance(entries, list):
                errors.add(f"{field}.{kind}", f"The {kind} parameter must be an array.")
                continue
            total += len(entries)
            for j, entry in enumerate(entries):
                address = _check_email_object(errors, f"{field}.{kind}.{j}", entry, kind)
                if address is None:
                    continue
                if address in seen:
                    errors.add(
                        f"{field}.{kind}.{j}.email",
                        "Each unique email address in the personalizations array should only be "
                        f"included once. You have included {address} more than once.",
                    )
                seen.add(address)
        if "subject" in p and (not isinstance(p["subject"], str) or not p["subject"]):
            errors.add(
                f"{field}.subject", "The subject must be a string at least one character long."
            )
        if "headers" in p:
            _check_headers(errors, f"{field}.headers", p["headers"])
        if "substitutions" in p:
            _check_string_map(errors, f"{field}.substitutions", p["substitutions"])
        if "custom_args" in p:
            args = _check_string_map(errors, f"{field}.custom_args", p["custom_args"])
            if _custom_args_size({**message_args, **args}) > MAX_CUSTOM_ARGS_BYTES:
                errors.add(
                    f"{field}.custom_args",
                    "The custom_args size limit of 10,000 bytes has been exceeded.",
                )
    if total > MAX_RECIPIENTS:
        errors.add(
            "personalizations",
            "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
        )


def _check_content(errors: _Errors, body: dict[str, Any]) -> None:
    content = body.get("content")
    if not isinstance(content, list) or not content:
        errors.add(
            "content", "Unless a valid template_id is provided, the content parameter is required."
        )
        return
    types: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            errors.add(f"content.{i}.type", "The content type must be a string.")
            continue
        if not isinstance(part.get("value"), str) or not part["value"]:
            errors.add(
                f"content.{i}.value",
                "The content value must be a string at least one character in length.",
            )
        types.append(part["type"])
    if "text/plain" in types and types[0] != "text/plain":
        errors.add(
            "content", "If present, text/plain must be first, followed by any other content."
        )
    if len(set(types)) != len(types):
        errors.add("content", "Each content type may only be provided once.")


def _check_attachments(errors: _Errors, attachments: Any) -> None:
    if not isinstance(attachments, list):
        errors.add("attachments", "The attachments parameter must be an array.")
        return
    for i, attachment in enumerate(attachments):
        field = f"attachments.{i}"
        if not isinstance(attachment, dict):
            errors.add(field, "Each attachment must be an object.")
            continue
        if not isinstance(attachment.get("filename"), str) or not attachment["filename"]:
            errors.add(f"{field}.filename", "The attachment filename parameter is required.")
        try:
            base64.b64decode(attachment.get("content", ""), validate=True)
        except (binascii.Error, TypeError, ValueError):
            errors.add(f"{field}.content", "The attachment content must be base64 encoded.")


def check_request(body: Any) -> None:
    """Raise ApiError with every problem the API would report for ``body``."""
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add(None, "Bad Request")
        raise ApiError(errors.errors)
    _check_personalizations(errors, body)
    _check_email_object(errors, "from", body.get("from"), "from")
    if "reply_to" in body:
        _check_email_object(errors, "reply_to", body["reply_to"], "reply_to")
    subject = body.get("subject")
    personalizations = (
        body.get("personalizations") if isinstance(body.get("personalizations"), list) else []
    )
    if not (isinstance(subject, str) and subject) and not (
        personalizations and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    ):
        errors.add(
            "subject",
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.",
        )
    _check_content(errors, body)
    if "headers" in body:
        _check_headers(errors, "headers", body["headers"])
    if "custom_args" in body:
        _check_string_map(errors, "custom_args", body["custom_args"])
    if "attachments" in body:
        _check_attachments(errors, body["attachments"])
    categories = body.get("categories", [])
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        errors.add("categories", "You may not have more than 10 categories per request.")
    elif any(not isinstance(c, str) or len(c) > MAX_CATEGORY_LENGTH for c in categories):
        errors.add("categories", "A category cannot be more than 255 characters.")
    if errors.errors:
        raise ApiError(errors.errors)
