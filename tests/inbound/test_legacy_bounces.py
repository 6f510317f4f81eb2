"""Bounces without a delivery status part: prose from Exim, qmail, Sendmail and friends."""

from __future__ import annotations

from helpdesk.inbound import bounce_text, legacy_bounces
from tests.inbound.conftest import build_mail, corpus_mail

SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")
BOUNCE_HEADERS = {
    "From": "MAILER-DAEMON@mx.example.net",
    "To": "info@pycon.test",
    "Subject": "failure notice",
    "Message-ID": "<notice.7@mx.example.net>",
}

QMAIL = """Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.org>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <gone@example.org>... User Unknown
Giving up on 192.0.2.1.

For further assistance, please contact <support@example.net>

--- Below this line is a copy of the message.

Return-Path: <info@pycon.test>
Received: (qmail 1 invoked by uid 1); 29 Apr 2025 00:00:00 +0000
From: PyCon Helpdesk <info@pycon.test>
To: gone@example.org
Message-ID: <ack.9@helpdesk.pycon.test>
Subject: Your ticket

Thanks!
"""


def test_split_original_cuts_at_the_copy_marker():
    text = bounce_text.split_original(QMAIL)
    assert "Giving up" in text.notification
    assert "copy of the message" not in text.notification
    assert text.original.lstrip().startswith("Return-Path:")


def test_split_original_cuts_where_copied_headers_begin_without_a_marker():
    text = bounce_text.split_original(
        "Could not deliver to <a@example.org>.\n\nReceived: from x\n\tby y\nFrom: me@pycon.test\n"
    )
    assert text.notification.strip() == "Could not deliver to <a@example.org>."
    assert text.original.startswith("Received:")


def test_a_short_summary_inside_the_notice_is_not_taken_for_the_copy():
    text = bounce_text.split_original(
        "We had trouble delivering your message.\nSubject: 'Hi'\nDate: today\n\n"
        "The following recipients returned permanent errors: a@example.org.\n"
    )
    assert "a@example.org" in text.notification
    assert text.original == ""


def test_a_sentence_mentioning_the_returned_message_is_not_a_marker():
    text = bounce_text.split_original(
        "You can delete your own text from the attached returned message.\n\n"
        "<gone@example.org>: host mx said: 550 no such user\n"
    )
    assert "gone@example.org" in text.notification


def test_prose_recipients_prefer_lines_that_read_like_failures():
    strong, weak = legacy_bounces.prose_recipients(
        "Your message to the list was held.\n"
        "Contact the owner at owner@example.net if you have questions, thanks\n"
        "<gone@example.org>: 550 5.1.1 user unknown\n",
        excluded=set(),
    )
    assert [address for address, _ in strong] == ["gone@example.org"]
    assert [address for address, _ in weak] == ["owner@example.net"]


def test_prose_recipients_skip_our_own_machine_and_url_addresses():
    strong, weak = legacy_bounces.prose_recipients(
        "From: info@pycon.test\n"
        "MAILER-DAEMON@mx.example.net could not deliver\n"
        "see https://help.example.net/u/nobody@example.net\n"
        "mailto:abuse@example.net failed\n"
        "stand-alone@example.org\n",
        excluded={"info@pycon.test"},
    )
    assert [address for address, _ in strong] == ["stand-alone@example.org"]
    assert weak == []


def test_qmail_prose_bounce_gives_address_status_and_our_message_id():
    report = legacy_bounces.parse_legacy_bounce(build_mail(BOUNCE_HEADERS, QMAIL))
    assert [r.address for r in report.recipients] == ["gone@example.org"]
    recipient = report.recipients[0]
    assert (recipient.status, recipient.reply_code, recipient.permanent) == ("5.1.1", "550", True)
    assert report.original_message_id == "ack.9@helpdesk.pycon.test"


def test_a_delay_notice_is_a_soft_bounce():
    body = (
        "This is an automatically generated Delivery Status Notification.\n\n"
        "THIS IS A WARNING MESSAGE ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
        "Delivery to the following recipients has been delayed and will be retried:\n\n"
        "     slow@example.org\n"
    )
    report = legacy_bounces.parse_legacy_bounce(build_mail(BOUNCE_HEADERS, body))
    assert [(r.address, r.permanent, r.action) for r in report.recipients] == [
        ("slow@example.org", False, "delayed")
    ]


def test_x_failed_recipients_header_names_the_addresses():
    headers = {**BOUNCE_HEADERS, "X-Failed-Recipients": "gone@example.org, other@example.org"}
    body = "A message that you sent could not be delivered.\n  gone@example.org\n    550 5.1.1\n"
    report = legacy_bounces.parse_legacy_bounce(build_mail(headers, body))
    assert report.source == "header"
    assert [(r.address, r.status) for r in report.recipients] == [
        ("gone@example.org", "5.1.1"),
        ("other@example.org", None),
    ]


def test_status_fields_pasted_into_text_are_read_as_a_dsn():
    report = legacy_bounces.parse_legacy_bounce(
        corpus_mail(*SISIMAI, "lhost-amazonworkmail-01.eml")
    )
    assert [(r.address, r.status) for r in report.recipients] == [("kijitora@example.jp", "5.1.1")]


def test_flufl_bounce_reads_formats_it_knows():
    # A Yahoo! bounce: flufl.bounce's Yahoo detector names both failed recipients.
    report = legacy_bounces.parse_legacy_bounce(corpus_mail("flufl-bounce", "yahoo_05.txt"))
    assert report.source == "flufl"
    assert sorted(r.address for r in report.recipients) == [
        "userx@example.com",
        "usery@example.com",
    ]


def test_flufl_results_lose_our_own_addresses_and_message_ids():
    # flufl.bounce reads Zoho's Message-ID and the bounce's own recipient as failures.
    report = legacy_bounces.parse_legacy_bounce(corpus_mail(*SISIMAI, "lhost-zoho-01.eml"))
    assert [r.address for r in report.recipients] == ["kijitora@example.co.jp"]


def test_a_bounce_forwarded_inside_a_notice_is_read_from_the_inner_bounce():
    # OCN wraps the Postfix bounce it received; the notice itself names only its support
    # address. The inner DSN's Original-Recipient is the address the mail was sent to
    # (it was expanded to another mailbox, which failed).
    report = legacy_bounces.parse_legacy_bounce(corpus_mail(*SISIMAI, "lhost-postfix-49.eml"))
    assert [r.address for r in report.recipients] == ["toraneko@neko.example.co.jp"]
    assert report.recipients[0].permanent is False


def test_the_returned_mails_recipient_is_the_last_resort():
    # Sendmail V5 names no address in its transcript, only the host that deferred.
    report = legacy_bounces.parse_legacy_bounce(corpus_mail(*SISIMAI, "lhost-v5sendmail-01.eml"))
    assert report.source == "original"
    assert [(r.address, r.permanent) for r in report.recipients] == [
        ("kijitora@example.com", False)
    ]


def test_a_notice_without_any_address_names_nobody():
    report = legacy_bounces.parse_legacy_bounce(
        build_mail(BOUNCE_HEADERS, "Something went wrong delivering your mail.\n")
    )
    assert report.recipients == []
    assert report.original_message_id is None
