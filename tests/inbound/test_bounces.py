"""Delivery status notifications (RFC 3464): fields, recipients, hard and soft bounces."""

from __future__ import annotations

import base64

import pytest

from helpdesk.inbound import bounces
from helpdesk.inbound.bounces import FailedRecipient
from helpdesk.inbound.headers import message_id_of
from tests.inbound.conftest import corpus_mail, parse_mail

SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")


def dsn(status_part: str, *, original: str = "", cte: str = "7bit") -> bytes:
    """A DSN from its delivery-status text and an optional returned message."""
    if cte == "base64":
        status_part = base64.encodebytes(status_part.encode()).decode()
    returned = f"--B\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n" if original else ""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: info@pycon.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce.1@mx.example.net>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: {cte}\r\n"
        f"\r\n{status_part}\r\n"
        f"{returned}--B--\r\n"
    ).encode()


ORIGINAL = (
    "From: PyCon Helpdesk <info@pycon.test>\r\nTo: gone@example.org\r\n"
    "Message-ID: <ack.42@helpdesk.pycon.test>\r\nSubject: Your ticket\r\n\r\nThanks!\r\n"
)

TWO_RECIPIENTS = (
    "Reporting-MTA: dns; mx.example.net\r\n"
    "\r\n"
    "Final-Recipient: rfc822; gone@example.org\r\n"
    "Action: failed\r\n"
    "Status: 5.0.0\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: Recipient address rejected:\r\n"
    "  User unknown in virtual mailbox table\r\n"
    "\r\n"
    "Final-Recipient: rfc822; full@example.org\r\n"
    "Action: delayed\r\n"
    "Status: 4.2.2\r\n"
    "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n"
)


# -- codes ------------------------------------------------------------------------------


def test_status_and_reply_codes_are_found_in_text():
    assert bounces.status_code("550 5.1.1 <a@b>: no such user") == "5.1.1"
    assert bounces.reply_code("550 5.1.1 <a@b>: no such user") == "550"
    assert bounces.status_code("no code here") is None
    assert bounces.reply_code(None) is None


def test_failures_only_skips_the_good_steps_of_a_transcript():
    transcript = "RCPT TO:<a@b> 250 2.1.5 Ok DATA 554 5.7.1 rejected"
    assert bounces.status_code(transcript) == "2.1.5"
    assert bounces.status_code(transcript, failures_only=True) == "5.7.1"
    assert bounces.reply_code(transcript, failures_only=True) == "554"


@pytest.mark.parametrize(
    ("status", "code", "action", "permanent"),
    [
        ("5.1.1", None, "failed", True),
        ("4.2.2", "452", "delayed", False),
        ("4.4.7", None, "failed", False),  # the status class decides, not the action
        (None, "550", None, True),
        (None, "421", None, False),
        (None, None, "delayed", False),
        (None, None, None, True),
    ],
)
def test_is_permanent_follows_the_status_class_then_the_reply_code(status, code, action, permanent):
    assert bounces.is_permanent(status, code, action) is permanent


def test_best_status_refines_a_generic_status_from_the_diagnostic():
    assert bounces.best_status("5.0.0", "550 5.1.1 user unknown") == "5.1.1"
    assert bounces.best_status("5.2.2", "550 5.1.1 user unknown") == "5.2.2"
    assert bounces.best_status("5.0.0", "451 4.3.0 try later") == "5.0.0"
    assert bounces.best_status(None, "550 5.7.1 denied") == "5.7.1"


# -- fields ---------------------------------------------------------------------------------


def test_recipient_blocks_split_per_recipient_even_without_blank_lines():
    text = (
        "Reporting-MTA: dns; mx.example.net\n"
        "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Final-Recipient: rfc822; b@example.org\nAction: failed\nStatus: 5.2.1\n"
    )
    per_message, blocks = bounces.recipient_blocks(text)
    assert per_message == {"reporting-mta": "dns; mx.example.net"}
    assert [b["final-recipient"] for b in blocks] == [
        "rfc822; a@example.org",
        "rfc822; b@example.org",
    ]
    assert [b["status"] for b in blocks] == ["5.1.1", "5.2.1"]


def test_status_fields_unfold_continuation_lines():
    fields = bounces.status_fields("Diagnostic-Code: smtp; 550 no\n  such user\n")
    assert fields == [("diagnostic-code", "smtp; 550 no such user"), ("", "")]


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("rfc822; Gone@Example.org", "gone@example.org"),
        ("RFC822;<gone@example.org>", "gone@example.org"),
        ("gone@example.org", "gone@example.org"),
        ("rfc822; @mx.example.org", None),
        ("x-unix; |/usr/bin/procmail", None),
        ("", None),
    ],
)
def test_field_address_reads_the_address_type_prefix_optional(value, address):
    assert bounces.field_address(value) == address


def test_recipient_prefers_the_original_recipient_over_an_alias_target():
    block = {
        "final-recipient": "rfc822; jane.doe@mailhost.example.org",
        "original-recipient": "rfc822; jane@example.org",
        "action": "failed",
        "status": "5.1.1",
    }
    recipient = bounces.recipient_from_block(block)
    assert recipient is not None
    assert recipient.address == "jane@example.org"


def test_recipient_from_block_skips_delivered_and_addressless_blocks():
    assert (
        bounces.recipient_from_block(
            {"final-recipient": "rfc822; a@b.example", "action": "delivered"}
        )
        is None
    )
    assert (
        bounces.recipient_from_block({"final-recipient": "rfc822; a@b.example", "status": "2.0.0"})
        is None
    )
    assert bounces.recipient_from_block({"action": "failed", "status": "5.1.1"}) is None


# -- whole reports --------------------------------------------------------------------------


def test_parse_delivery_status_reads_every_recipient_and_our_message_id():
    message = parse_mail(dsn(TWO_RECIPIENTS, original=ORIGINAL))
    assert bounces.has_delivery_status(message)
    report = bounces.parse_delivery_status(message)
    assert report.recipients == [
        FailedRecipient(
            address="gone@example.org",
            status="5.1.1",
            action="failed",
            diagnostic="550 5.1.1 <gone@example.org>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
            permanent=True,
            reply_code="550",
        ),
        FailedRecipient(
            address="full@example.org",
            status="4.2.2",
            action="delayed",
            diagnostic="452 4.2.2 Mailbox full",
            permanent=False,
            reply_code="452",
        ),
    ]
    assert report.original_message_id == "ack.42@helpdesk.pycon.test"
    assert report.reporting_mta == "mx.example.net"
    assert report.source == "dsn"


def test_parse_delivery_status_decodes_a_base64_status_part():
    message = parse_mail(dsn(TWO_RECIPIENTS, cte="base64"))
    report = bounces.parse_delivery_status(message)
    assert [r.address for r in report.recipients] == ["gone@example.org", "full@example.org"]
    assert report.original_message_id is None


def test_original_message_id_comes_from_text_rfc822_headers():
    message = corpus_mail(*SISIMAI, "rhost-cox-01.eml")
    report = bounces.parse_delivery_status(message)
    assert [r.address for r in report.recipients] == ["recipient55@cox.net"]
    assert report.original_message_id is not None
    assert report.original_message_id != message_id_of(str(message["Message-ID"]))


def test_successful_deliveries_are_reported_apart_from_failures():
    status = (
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; jane@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    )
    report = bounces.parse_delivery_status(parse_mail(dsn(status)))
    assert report.recipients == []
    assert report.delivered == ["jane@example.org"]


def test_an_empty_or_garbled_status_part_names_nobody_and_does_not_fail():
    for status in ("", "this is not a status part at all", "Final-Recipient: rfc822;\r\n"):
        report = bounces.parse_delivery_status(parse_mail(dsn(status)))
        assert report.recipients == []


def test_message_id_in_text_takes_the_last_quoted_id():
    text = "Message-ID: <notice@mx>\n...\nMessage-Id: <ours.1@pycon.test>\n"
    assert bounces.message_id_in_text(text) == "ours.1@pycon.test"
    assert bounces.message_id_in_text(text, exclude="ours.1@pycon.test") == "notice@mx"
