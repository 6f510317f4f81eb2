"""Everything the pipeline learns about a mail before it writes rows: parse, classify, identify."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flask import current_app

from helpdesk.inbound.routing import Route, RoutingInput

if TYPE_CHECKING:
    from helpdesk.inbound.classify import Classification
    from helpdesk.inbound.groups import SenderIdentity
    from helpdesk.inbound.parse import InboundMail


@dataclass
class MailFacts:
    """A parsed mail with its classification, its sender and the text to show."""

    raw: bytes
    sha256: str
    mail: InboundMail
    classification: Classification
    sender: SenderIdentity
    text: str  # the body as shown (a Group's footer removed)
    unsafe_html: str | None  # as received, footer removed: never shown, see ``html``
    route: Route | None = None

    @cached_property
    def html(self) -> str | None:
        """The HTML body sanitised; worked out only for mail that is stored to be shown
        (bounces and duplicates never need it)."""
        from helpdesk.sanitize import sanitize_html

        return sanitize_html(self.unsafe_html) if self.unsafe_html else None

    @property
    def dedupe_key(self) -> str:
        """Message-ID, or the SHA-256 of the raw bytes when there is none."""
        return self.mail.message_id or f"sha256:{self.sha256}"

    @cached_property
    def report_key(self) -> str:
        """The dedupe key of a bounce or complaint: Message-ID plus a digest of the body.

        Report generators reuse Message-IDs across different reports more than people do;
        the body of one report is the same in every copy of it (relays add headers only),
        so the digest keeps distinct reports apart and copies together.
        """
        header_end = self.raw.find(b"\n\n")
        crlf_end = self.raw.find(b"\r\n\r\n")
        cuts = [i for i in (header_end, crlf_end) if i >= 0]
        body = self.raw[min(cuts) :] if cuts else self.raw
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()
        digest = hashlib.sha256(body).hexdigest()[:32]
        return f"{self.dedupe_key}|{digest}"

    @property
    def is_report(self) -> bool:
        """Whether the mail is a bounce or a complaint (deduplicated by report_key)."""
        from helpdesk.inbound.classify import MailKind

        return self.classification.kind in (MailKind.BOUNCE, MailKind.COMPLAINT)

    @property
    def receipt_key(self) -> str:
        """The key under which the mail's receipts are kept."""
        return self.report_key if self.is_report else self.dedupe_key

    @property
    def sender_address(self) -> str | None:
        """The sender's address when we can trust it, else None."""
        return self.sender.address if self.sender.verified else None

    def recipients(self) -> list[str]:
        """Every address the mail says it was sent to."""
        mail = self.mail
        return [
            *(a.address for a in mail.to),
            *(a.address for a in mail.cc),
            *mail.delivered_to,
            *mail.x_original_to,
        ]

    def routing_input(self) -> RoutingInput:
        """What routing rules look at."""
        return RoutingInput(
            recipients=self.recipients(),
            list_id=self.mail.list_id,
            sender=self.sender_address,
            subject=self.mail.subject,
            body=self.text,
            kinds_loader=self._sender_kinds,
        )

    def _sender_kinds(self) -> set[str]:
        from helpdesk.contacts import find_contact

        if not self.sender_address:
            return set()
        contact = find_contact(self.sender_address)
        return {k.value for k in contact.kinds} if contact else set()


def _verifier() -> Any:
    """The app's DKIM verifier (its DNS cache or override table lives as long as the app)."""
    from helpdesk.inbound.dkim import DkimVerifier

    verifier = current_app.extensions.get("helpdesk_dkim")
    if verifier is None:
        verifier = DkimVerifier.from_settings(current_app.config["HELPDESK_SETTINGS"])
        current_app.extensions["helpdesk_dkim"] = verifier
    return verifier


def mail_facts(raw: bytes, sha256: str, stage: Any) -> MailFacts:
    """Parse, classify and identify a mail; ``stage.name`` follows along for error reports."""
    from helpdesk.inbound.classify import classify, origin_token
    from helpdesk.inbound.directory import directory
    from helpdesk.inbound.groups import identify_sender, strip_group_footer, strip_group_footer_html
    from helpdesk.inbound.parse import parse
    from helpdesk.inbound.threading import is_own_message_id

    stage.name = "parse"
    mail = parse(raw, max_size=current_app.config["HELPDESK_MAX_MAIL_BYTES"])
    groups = directory().groups
    stage.name = "classify"
    classification = classify(
        mail.message,
        own_list_ids=frozenset(groups),
        is_own_message_id=is_own_message_id,
        own_origin=origin_token(current_app.config["HELPDESK_BASE_URL"]),
    )
    stage.name = "identify"
    sender = identify_sender(raw, mail.message, groups, _verifier())
    text, html = mail.text, mail.html
    if sender.via_group:
        text = strip_group_footer(text)
        html = strip_group_footer_html(html) if html else html
    return MailFacts(raw, sha256, mail, classification, sender, text, html)
