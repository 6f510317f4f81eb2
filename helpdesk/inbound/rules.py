"""The classification rules: each a small named check on a parsed mail.

A rule looks at headers (and at most the content types of a report's direct parts) and
returns the kind of mail it recognises, or None. :func:`helpdesk.inbound.classify.classify`
runs them all in order, records which fired, and lets the strongest kind win.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from helpdesk.inbound.amazon_ses import is_ses_notification
from helpdesk.inbound.complaints import FEEDBACK_REPORT_TYPE, is_outlook_complaint
from helpdesk.inbound.headers import address_of, header_text, list_id_of, message_id_of

# Stamped on every mail we send, with the value of our own origin token, so that our
# own mail coming back (through a Group we are a member of, or a forwarding loop) is
# recognised even when its Message-ID was rewritten.
ORIGIN_HEADER = "X-Helpdesk-Origin"


class MailKind(StrEnum):
    """What an inbound mail is, as far as ticketing is concerned."""

    PERSONAL = "personal"  # written by a person: opens or continues a ticket
    AUTO_REPLY = "auto_reply"  # vacation notices, receipts, our own mail coming back
    BOUNCE = "bounce"  # a delivery failure of mail we sent
    COMPLAINT = "complaint"  # a recipient reported our mail as spam or opted out
    BULK = "bulk"  # newsletters and mailing-list traffic not addressed to us


@dataclass(frozen=True)
class RuleContext:
    """What the rules need to know about this installation."""

    own_list_ids: frozenset[str] = frozenset()
    is_own_message_id: Callable[[str], bool] | None = None
    own_origin: str | None = None


Rule = Callable[[Message, RuleContext], MailKind | None]

MACHINE_SENDERS = frozenset(
    {
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "postmaster",
        "post_master",
        "mdaemon",
    }
)
_MACHINE_NAMES = re.compile(
    r"^(?:mail delivery (?:system|subsystem|service)|mailer[-_ ]?daemon|postmaster"
    r"|mail administrator|internet mail delivery|mail delivery)$",
    re.IGNORECASE,
)
_AUTOREPLY_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Auto-Reply",
    "X-Autoreply-From",
    "X-Mail-Autoreply",
    "X-AutoReply-From",
    "X-Vacation",
)
_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})
# Subject prefixes that only software writes.
_OOO_STRONG = (
    r"auto(?:matic|mated)?[ _-]?(?:reply|response|respons|answer)|autoreply|autorespon(?:se|der)"
    r"|out of (?:the )?office (?:auto)?reply|vacation reply|abwesenheitsnotiz"
    r"|abwesenheitsmeldung|automatische (?:abwesenheitsnotiz|antwort|rückantwort|rückmeldung)"
    r"|autom\. antwort|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica"
    r"|automatisch antwoord|afwezigheidsbericht|resposta autom[áa]tica"
    r"|odpowied[źz] automatyczna|autosvar"
)
# Phrases a person might also use; they count only as the whole subject or as a prefix.
_OOO_WEAK = r"out of (?:the )?office|abwesend|abwesenheit|nicht im büro|on vacation|im urlaub"
_OUT_OF_OFFICE = re.compile(
    rf"^\s*(?:[\[(]\s*(?:{_OOO_STRONG}|{_OOO_WEAK})\s*[\])]"
    rf"|(?:{_OOO_STRONG})\s*(?:[:\-\u2013|]|$)"
    rf"|(?:{_OOO_WEAK})\s*(?::|$))",
    re.IGNORECASE,
)
# Lotus Notes writes "AUTO: Jane is out of the office"; upper case only.
_LOTUS_AUTO = re.compile(r"^AUTO:\s")
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undelivered mail returned to sender|undeliver(?:able|ed)(?: mail| message)?\s*[:(]"
    r"|undeliverable (?:mail|message)$|mail delivery failed|delivery status notification"
    r"|returned mail\s*[:\-]|failure notice$|(?:permanent |temporary )?delivery failure"
    r"(?: notification)?\s*(?:[:(]|$)|(?:mail )?delivery warning\s*(?::|$)|non[- ]?delivery"
    r"|mail system error - returned mail|delivery notification: delivery has failed"
    r"|warning: could not send message|message delivery failure|mail failure\s*-"
    r"|mail could not be delivered|nondeliverable mail|there was an error sending your mail"
    r"|email bounce notification|postmaster notify: see transcript|delivery has failed"
    r"|unzustellbar\s*:|nicht zustellbar\s*:|non remis\s*:|mail error$)",
    re.IGNORECASE,
)


# -- helpers --------------------------------------------------------------------------


def report_type(message: Message) -> str | None:
    """The report-type of a ``multipart/report`` mail, from its parameter or its parts."""
    if message.get_content_type() != "multipart/report":
        return None
    declared = message.get_param("report-type")
    if isinstance(declared, str) and declared.strip():
        return declared.strip().strip('"').lower()
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else []:
        if isinstance(part, Message) and part.get_content_type().startswith("message/"):
            ctype = part.get_content_type()
            if ctype == FEEDBACK_REPORT_TYPE:
                return "feedback-report"
            if ctype.endswith("delivery-status"):
                return "delivery-status"
            if ctype.endswith("disposition-notification"):
                return "disposition-notification"
    return None


# -- the rules, in the order classify runs them -----------------------------------------


def own_mail(message: Message, context: RuleContext) -> MailKind | None:
    """Our own outgoing mail came back: its Message-ID is ours or it carries our origin."""
    if context.own_origin:
        stamp = header_text(message, ORIGIN_HEADER)
        if stamp and stamp.lower() == context.own_origin.strip().lower():
            return MailKind.AUTO_REPLY
    if context.is_own_message_id is not None:
        found = message_id_of(header_text(message, "Message-ID"))
        if found and context.is_own_message_id(found):
            return MailKind.AUTO_REPLY
    return None


def feedback_report(message: Message, context: RuleContext) -> MailKind | None:
    """An abuse or opt-out report in Abuse Reporting Format (RFC 5965)."""
    return MailKind.COMPLAINT if report_type(message) == "feedback-report" else None


def outlook_feedback_loop(message: Message, context: RuleContext) -> MailKind | None:
    """Outlook.com's feedback loop: the reported mail wrapped with its original recipient."""
    subject = header_text(message, "Subject").lower()
    if subject.startswith("complaint about message from") and is_outlook_complaint(message):
        return MailKind.COMPLAINT
    return None


def unsubscribe_request(message: Message, context: RuleContext) -> MailKind | None:
    """A mail client's unsubscribe request (Apple Mail's ``X-Apple-Unsubscribe: true``)."""
    value = header_text(message, "X-Apple-Unsubscribe").lower()
    return MailKind.COMPLAINT if value == "true" else None


def ses_notification(message: Message, context: RuleContext) -> MailKind | None:
    """An Amazon SES notification by mail; its JSON decides bounce or complaint later."""
    return MailKind.BOUNCE if is_ses_notification(message) else None


def delivery_status_report(message: Message, context: RuleContext) -> MailKind | None:
    """A delivery status notification (RFC 3464, ``report-type=delivery-status``)."""
    if message.get_content_type() in (
        "message/delivery-status",
        "message/global-delivery-status",
    ):
        return MailKind.BOUNCE
    return MailKind.BOUNCE if report_type(message) == "delivery-status" else None


def failed_recipients_header(message: Message, context: RuleContext) -> MailKind | None:
    """An ``X-Failed-Recipients`` header, as Exim and Gmail add to their bounces."""
    return MailKind.BOUNCE if message.get("X-Failed-Recipients") is not None else None


def mailer_daemon_sender(message: Message, context: RuleContext) -> MailKind | None:
    """Mail from MAILER-DAEMON, postmaster or a "Mail Delivery System" is a bounce."""
    name, address = address_of(message, "From")
    raw = str(message.get("From", "")).strip()
    local = address.split("@", 1)[0] if address else raw
    if local.strip().lower() in MACHINE_SENDERS or _MACHINE_NAMES.match(name.strip()):
        return MailKind.BOUNCE
    # "From: <>" is the null sender that only delivery systems use.
    return MailKind.BOUNCE if not address and raw.endswith("<>") else None


def bounce_subject(message: Message, context: RuleContext) -> MailKind | None:
    """A subject that only delivery systems write ("Undelivered Mail Returned to Sender")."""
    return MailKind.BOUNCE if _BOUNCE_SUBJECT.match(header_text(message, "Subject")) else None


def read_receipt(message: Message, context: RuleContext) -> MailKind | None:
    """A message disposition notification (read receipt, RFC 8098)."""
    return MailKind.AUTO_REPLY if report_type(message) == "disposition-notification" else None


def auto_submitted(message: Message, context: RuleContext) -> MailKind | None:
    """RFC 3834: any ``Auto-Submitted`` value other than ``no`` marks automatic mail."""
    value = header_text(message, "Auto-Submitted").lower()
    keyword = re.split(r"[\s;(]", value, maxsplit=1)[0] if value else ""
    return MailKind.AUTO_REPLY if keyword and keyword != "no" else None


def autoreply_headers(message: Message, context: RuleContext) -> MailKind | None:
    """Vendor auto-reply headers: X-Autoreply, X-Autorespond and their relatives."""
    for name in _AUTOREPLY_HEADERS:
        value = message.get(name)
        if value is not None and str(value).strip().lower() not in ("no", "false", "0"):
            return MailKind.AUTO_REPLY
    if header_text(message, "X-POST-MessageClass").lower().startswith("9; autoreply"):
        return MailKind.AUTO_REPLY
    if header_text(message, "X-Autogenerated").lower() == "reply":
        return MailKind.AUTO_REPLY
    if header_text(message, "X-FC-MachineGenerated").lower() == "true":
        return MailKind.AUTO_REPLY
    return None


def auto_response_suppress(message: Message, context: RuleContext) -> MailKind | None:
    """Exchange's ``X-Auto-Response-Suppress`` asking not to be answered (All, OOF, AutoReply).

    Exchange sets it on its own automatic replies; a value limited to receipts (DR, RN)
    is left alone because ordinary mail may carry it.
    """
    value = header_text(message, "X-Auto-Response-Suppress")
    values = {v.strip().lower() for v in value.split(",")}
    return MailKind.AUTO_REPLY if values & _SUPPRESS_VALUES else None


def precedence(message: Message, context: RuleContext) -> MailKind | None:
    """``Precedence``: bulk and junk are bulk mail, auto_reply is an auto-reply, and list is
    bulk unless it is one of our own Groups (whose senders still get an acknowledgement)."""
    value = header_text(message, "Precedence").lower().strip()
    if value in ("bulk", "junk"):
        return None if list_id_of(message) in context.own_list_ids else MailKind.BULK
    if value in ("auto_reply", "auto-reply"):
        return MailKind.AUTO_REPLY
    if value == "list":
        return None if list_id_of(message) in context.own_list_ids else MailKind.BULK
    return None


def mailing_list(message: Message, context: RuleContext) -> MailKind | None:
    """A ``List-Id`` that is not one of our own Groups, or list software's headers
    (``Mailing-List``, ``X-MLServer``) on mail without a List-Id: mailing-list traffic."""
    found = list_id_of(message)
    if found:
        return None if found in context.own_list_ids else MailKind.BULK
    if message.get("Mailing-List") is not None or message.get("X-MLServer") is not None:
        return MailKind.BULK
    return None


def out_of_office_subject(message: Message, context: RuleContext) -> MailKind | None:
    """An out-of-office subject ("Automatic reply: ...", "Abwesenheitsnotiz: ...")."""
    subject = header_text(message, "Subject")
    if _OUT_OF_OFFICE.match(subject) or _LOTUS_AUTO.match(subject):
        return MailKind.AUTO_REPLY
    return None


RULES: tuple[Rule, ...] = (
    own_mail,
    feedback_report,
    outlook_feedback_loop,
    unsubscribe_request,
    ses_notification,
    delivery_status_report,
    failed_recipients_header,
    mailer_daemon_sender,
    bounce_subject,
    read_receipt,
    auto_submitted,
    autoreply_headers,
    auto_response_suppress,
    precedence,
    mailing_list,
    out_of_office_subject,
)
