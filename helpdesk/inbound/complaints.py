"""Complaint reports: a recipient marked our mail as spam or asked to be taken off a list.

Mailbox providers send these as Abuse Reporting Format reports (RFC 5965,
``multipart/report; report-type=feedback-report``); Outlook.com's older feedback loop
wraps the reported mail with an ``X-HmXmrOriginalRecipient`` header instead, and Apple
Mail sends a plain unsubscribe request marked ``X-Apple-Unsubscribe``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from helpdesk.addresses import is_valid
from helpdesk.inbound.bounces import (
    ORIGINAL_MESSAGE_TYPES,
    field_address,
    field_address_or_host,
    original_message_id,
    part_text,
    report_parts,
    status_fields,
)
from helpdesk.inbound.headers import address_of, addresses_of

FEEDBACK_REPORT_TYPE = "message/feedback-report"
OUTLOOK_RECIPIENT_HEADER = "X-HmXmrOriginalRecipient"


@dataclass
class ComplaintReport:
    """What a complaint says: its kind and whom our mail was sent to."""

    feedback_type: str  # abuse, fraud, virus, opt-out, auth-failure, not-spam, other
    original_message_id: str | None  # the Message-ID of our mail, without <>
    original_recipients: list[str]  # the addresses that complained
    user_agent: str | None = None
    reporting_mta: str | None = None
    source_ip: str | None = None
    original_mail_from: str | None = None
    reported_domains: list[str] = field(default_factory=list)


def has_feedback_report(message: Message) -> bool:
    """Whether the mail carries a machine-readable feedback report part."""
    return any(part.get_content_type() == FEEDBACK_REPORT_TYPE for part in report_parts(message))


def parse_feedback_report(message: Message) -> ComplaintReport:
    """Read an ARF report: its feedback fields and the headers of the reported mail."""
    values: dict[str, list[str]] = {}
    for part in report_parts(message):
        if part.get_content_type() == FEEDBACK_REPORT_TYPE:
            for name, value in status_fields(part_text(part)):
                if name:
                    values.setdefault(name, []).append(value)

    def first(name: str) -> str | None:
        """The first non-empty value of a feedback field."""
        found = values.get(name)
        return found[0] if found and found[0] else None

    recipients = [field_address(v) for v in values.get("original-rcpt-to", [])]
    recipients += [field_address(v) for v in values.get("removal-recipient", [])]
    found = [address for address in recipients if address and is_valid(address)]
    if not found:
        # Several providers redact Original-Rcpt-To; the reported copy still says To.
        found = _embedded_recipients(message)
    return ComplaintReport(
        feedback_type=(first("feedback-type") or "other").lower(),
        original_message_id=original_message_id(message),
        original_recipients=list(dict.fromkeys(found)),
        user_agent=first("user-agent"),
        reporting_mta=field_address_or_host(first("reporting-mta")),
        source_ip=first("source-ip"),
        original_mail_from=field_address(first("original-mail-from")),
        reported_domains=values.get("reported-domain", []),
    )


def _embedded_recipients(message: Message) -> list[str]:
    for part in report_parts(message):
        if part.get_content_type() not in ORIGINAL_MESSAGE_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            embedded = payload[0]
            found = addresses_of(embedded, OUTLOOK_RECIPIENT_HEADER) or addresses_of(embedded, "To")
            return [address for address in found if is_valid(address)]
    return []


def is_outlook_complaint(message: Message) -> bool:
    """Whether the mail is an Outlook.com feedback-loop report (a wrapped reported mail)."""
    if not message.is_multipart():
        return False
    for part in message.get_payload()[:3]:
        if not isinstance(part, Message) or part.get_content_type() not in ORIGINAL_MESSAGE_TYPES:
            continue
        payload = part.get_payload()
        embedded = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(embedded, Message) and embedded.get(OUTLOOK_RECIPIENT_HEADER) is not None:
            return True
    return False


def parse_outlook_complaint(message: Message) -> ComplaintReport:
    """Read an Outlook.com feedback-loop report."""
    return ComplaintReport(
        feedback_type="abuse",
        original_message_id=original_message_id(message),
        original_recipients=_embedded_recipients(message),
        user_agent="Outlook.com JMRP",
    )


def unsubscribe_request(message: Message) -> ComplaintReport:
    """An unsubscribe request sent by a mail client: the sender opts out."""
    _, sender = address_of(message, "From")
    return ComplaintReport(
        feedback_type="opt-out",
        original_message_id=None,
        original_recipients=[sender] if is_valid(sender) else [],
        user_agent="Apple Mail" if message.get("X-Apple-Unsubscribe") else None,
    )
