"""Classify an inbound mail: personal, auto-reply, bounce, complaint or bulk.

Every rule in :data:`helpdesk.inbound.rules.RULES` runs (they are header lookups); the
names of those that fire are kept so the caller can log why. The strongest kind wins:
our own mail coming back, then complaints, bounces, auto-replies and bulk mail. Only
for complaints and bounces are the report's parts read, to say who failed or complained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from helpdesk.inbound import amazon_ses, complaints, rules
from helpdesk.inbound.bounces import BounceReport, has_delivery_status, parse_delivery_status
from helpdesk.inbound.complaints import ComplaintReport
from helpdesk.inbound.legacy_bounces import parse_legacy_bounce
from helpdesk.inbound.rules import ORIGIN_HEADER, MailKind, RuleContext

__all__ = [
    "ORIGIN_HEADER",
    "Classification",
    "MailKind",
    "classify",
    "origin_token",
]

log = logging.getLogger(__name__)

_PRIORITY = (MailKind.COMPLAINT, MailKind.BOUNCE, MailKind.AUTO_REPLY, MailKind.BULK)


@dataclass
class Classification:
    """The verdict on one mail and the rules that led to it."""

    kind: MailKind
    rules: list[str]  # names of the rules that fired, in the order they ran
    bounce: BounceReport | None = None
    complaint: ComplaintReport | None = None

    @property
    def own_mail(self) -> bool:
        """Our own outgoing mail came back; the caller drops it (and logs it)."""
        return "own_mail" in self.rules


def origin_token(base_url: str) -> str:
    """The value we stamp into ``X-Helpdesk-Origin``: the host we are reached at.

    Another installation of this software has another host, so its mail is not
    mistaken for ours.
    """
    return (urlsplit(base_url).hostname or base_url).lower()


def classify(
    message: Message,
    *,
    own_list_ids: Iterable[str] = frozenset(),
    is_own_message_id: Callable[[str], bool] | None = None,
    own_origin: str | None = None,
) -> Classification:
    """Run every rule over ``message`` and return the strongest verdict.

    ``own_list_ids`` are the List-Ids of our own Google Groups (their traffic is not
    bulk); ``is_own_message_id`` recognises Message-IDs we generated; ``own_origin`` is
    our :func:`origin_token`.
    """
    context = RuleContext(
        own_list_ids=frozenset(i.strip().strip("<>").lower() for i in own_list_ids),
        is_own_message_id=is_own_message_id,
        own_origin=own_origin,
    )
    fired: list[str] = []
    kinds: set[MailKind] = set()
    for rule in rules.RULES:
        kind = rule(message, context)
        if kind is not None:
            fired.append(rule.__name__)
            kinds.add(kind)
    if "own_mail" in fired:
        log.info("own mail came back: %s", message.get("Message-ID"))
        return Classification(MailKind.AUTO_REPLY, fired)
    kind = next((k for k in _PRIORITY if k in kinds), MailKind.PERSONAL)
    if kind is MailKind.COMPLAINT:
        return Classification(kind, fired, complaint=_complaint(message, fired))
    if kind is MailKind.BOUNCE:
        if "ses_notification" in fired:
            return _ses(message, fired)
        return _bounce(message, fired)
    return Classification(kind, fired)


def _complaint(message: Message, fired: list[str]) -> ComplaintReport:
    if "feedback_report" in fired:
        return complaints.parse_feedback_report(message)
    if "outlook_feedback_loop" in fired:
        return complaints.parse_outlook_complaint(message)
    return complaints.unsubscribe_request(message)


def _bounce(message: Message, fired: list[str]) -> Classification:
    report = parse_delivery_status(message) if has_delivery_status(message) else None
    if report is None or not (report.recipients or report.delivered):
        # No status part, or one too broken to name anybody: read the prose instead.
        legacy = parse_legacy_bounce(message)
        if report is not None and not legacy.original_message_id:
            legacy.original_message_id = report.original_message_id
        report = legacy
    if not report.recipients and report.delivered:
        # A DSN that reports only successful deliveries is a receipt, not a bounce.
        return Classification(MailKind.AUTO_REPLY, fired, bounce=report)
    if not report.recipients:
        log.info("bounce without a recognisable failed recipient: %s", message.get("Subject"))
    return Classification(MailKind.BOUNCE, fired, bounce=report)


def _ses(message: Message, fired: list[str]) -> Classification:
    notification = amazon_ses.ses_notification(message)
    kind = amazon_ses.ses_kind(notification) if notification else ""
    if notification is None or kind not in ("Bounce", "Complaint", "Delivery"):
        # Subscription confirmations and other topic mail: automatic, nothing to record.
        return Classification(MailKind.AUTO_REPLY, fired)
    if kind == "Complaint":
        return Classification(
            MailKind.COMPLAINT, fired, complaint=amazon_ses.ses_complaint(notification)
        )
    if kind == "Delivery":
        receipt = BounceReport(
            recipients=[],
            original_message_id=None,
            source="ses",
            delivered=amazon_ses.ses_delivered(notification),
        )
        return Classification(MailKind.AUTO_REPLY, fired, bounce=receipt)
    return Classification(MailKind.BOUNCE, fired, bounce=amazon_ses.ses_bounce(notification))
