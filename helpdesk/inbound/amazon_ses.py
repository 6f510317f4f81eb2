"""Amazon SES notifications delivered by mail through an SNS topic subscription.

An installation that relays through SES may subscribe a mailbox to its bounce and
complaint topics; those notices are JSON documents, not DSNs.
"""

from __future__ import annotations

import json
import logging
from email.message import Message
from typing import Any

from helpdesk.addresses import is_valid
from helpdesk.inbound.bounces import (
    BounceReport,
    FailedRecipient,
    best_status,
    is_permanent,
    part_text,
    reply_code,
)
from helpdesk.inbound.complaints import ComplaintReport
from helpdesk.inbound.headers import address_of, message_id_of

log = logging.getLogger(__name__)

SNS_SENDER = "no-reply@sns.amazonaws.com"
MAX_BODY = 256 * 1024


def is_ses_notification(message: Message) -> bool:
    """Whether the mail comes from Amazon SNS (the JSON is read only when it does)."""
    return address_of(message, "From")[1] == SNS_SENDER


def ses_notification(message: Message) -> dict[str, Any] | None:
    """The SES notification carried in the body, unwrapped from its SNS envelope."""
    if message.is_multipart():
        return None
    text = part_text(message)[:MAX_BODY]
    # Sendmail folds lines longer than 990 bytes with "!\n "; undo it before parsing.
    text = text.replace("\r\n", "\n").replace("!\n ", "")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        document = json.loads(text[start : end + 1])
        if isinstance(document, dict) and isinstance(document.get("Message"), str):
            document = json.loads(document["Message"])
    except ValueError:
        log.info("SNS mail without a readable JSON notification")
        return None
    if not isinstance(document, dict) or "notificationType" not in document:
        return None
    return document


def ses_kind(notification: dict[str, Any]) -> str:
    """Bounce, Complaint or Delivery."""
    return str(notification.get("notificationType", ""))


def ses_bounce(notification: dict[str, Any]) -> BounceReport:
    """The failed recipients of an SES bounce notification."""
    bounce = _object(notification.get("bounce"))
    transient = str(bounce.get("bounceType", "")).lower() == "transient"
    recipients = []
    for entry in bounce.get("bouncedRecipients") or []:
        entry = _object(entry)
        address = str(entry.get("emailAddress", "")).strip().lower()
        if not is_valid(address):
            continue
        diagnostic = entry.get("diagnosticCode") or None
        if diagnostic:
            diagnostic = str(diagnostic).partition(";")[2].strip() or str(diagnostic)
        status = best_status(entry.get("status") or None, diagnostic)
        code = reply_code(diagnostic, failures_only=True)
        action = entry.get("action") or ("delayed" if transient else "failed")
        permanent = is_permanent(status, code, action)
        if status is None and code is None:
            permanent = not transient
        recipients.append(
            FailedRecipient(
                address=address,
                status=status,
                action=action,
                diagnostic=diagnostic,
                permanent=permanent,
                reply_code=code,
            )
        )
    return BounceReport(
        recipients=recipients,
        original_message_id=_message_id(notification),
        reporting_mta=str(bounce.get("reportingMTA", "")).rpartition(";")[2].strip() or None,
        source="ses",
    )


def ses_complaint(notification: dict[str, Any]) -> ComplaintReport:
    """The complainants of an SES complaint notification."""
    complaint = _object(notification.get("complaint"))
    recipients = [
        str(_object(entry).get("emailAddress", "")).strip().lower()
        for entry in complaint.get("complainedRecipients") or []
    ]
    return ComplaintReport(
        feedback_type=str(complaint.get("complaintFeedbackType") or "abuse").lower(),
        original_message_id=_message_id(notification),
        original_recipients=[address for address in recipients if is_valid(address)],
        user_agent=complaint.get("userAgent"),
    )


def ses_delivered(notification: dict[str, Any]) -> list[str]:
    """Recipients an SES delivery notification reports as delivered."""
    delivery = _object(notification.get("delivery"))
    return [str(address).lower() for address in delivery.get("recipients") or []]


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message_id(notification: dict[str, Any]) -> str | None:
    # SES's own messageId is not the Message-ID header we wrote; that is in the headers.
    mail = _object(notification.get("mail"))
    for header in mail.get("headers") or []:
        header = _object(header)
        if str(header.get("name", "")).lower() == "message-id":
            return message_id_of(str(header.get("value", "")))
    common = _object(mail.get("commonHeaders")).get("messageId")
    return message_id_of(str(common)) if common else None
