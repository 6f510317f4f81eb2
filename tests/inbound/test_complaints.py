"""Complaint reports (ARF, Outlook.com, Apple Mail) and Amazon SES notifications."""

from __future__ import annotations

from helpdesk.inbound import amazon_ses, complaints
from tests.inbound.conftest import corpus_mail, parse_mail

SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")


def arf(feedback: str, original: str) -> bytes:
    """An ARF report with the given feedback fields and reported mail."""
    return (
        "From: fbl@isp.example\r\nTo: abuse@pycon.test\r\nSubject: Abuse report\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--F\r\nContent-Type: message/feedback-report\r\n\r\n{feedback}\r\n"
        f"--F\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--F--\r\n"
    ).encode()


REPORTED = (
    "From: PyCon <news@pycon.test>\r\nTo: reader@example.org\r\n"
    "Message-ID: <news.2025.1@helpdesk.pycon.test>\r\nSubject: Early bird\r\n\r\nBuy!\r\n"
)


def test_arf_report_gives_feedback_type_recipients_and_our_message_id():
    report = complaints.parse_feedback_report(corpus_mail(*SISIMAI, "arf-16.eml"))
    assert report.feedback_type == "abuse"
    assert report.original_recipients == [
        "kijitora@example.com",
        "sironeko@example.com",
        "mikeneko@example.com",
        "sabatora@example.com",
        "sirokiji@example.org",
        "kuroneko@example.com",
        "sabineko@example.com",
    ]
    assert report.original_message_id == "ffffffffffffffffffffffff0000000@example.jp"
    assert report.user_agent == "ReturnPathFBL/1.0"
    assert report.source_ip == "192.0.2.1"
    assert report.original_mail_from == "neko@example.jp"
    assert report.reported_domains == ["example.com", "example.org"]


def test_a_redacted_report_falls_back_to_the_reported_mails_recipient():
    feedback = "Feedback-Type: abuse\r\nUser-Agent: SomeISP/1.0\r\nVersion: 1\r\n"
    report = complaints.parse_feedback_report(parse_mail(arf(feedback, REPORTED)))
    assert report.original_recipients == ["reader@example.org"]
    assert report.original_message_id == "news.2025.1@helpdesk.pycon.test"


def test_a_report_without_a_feedback_type_is_other():
    report = complaints.parse_feedback_report(parse_mail(arf("Version: 1\r\n", REPORTED)))
    assert report.feedback_type == "other"


def test_outlook_feedback_loop_report():
    message = corpus_mail(*SISIMAI, "arf-22.eml")
    assert complaints.is_outlook_complaint(message)
    report = complaints.parse_outlook_complaint(message)
    assert report.original_recipients == ["kijitora@example.com"]
    assert report.original_message_id == "0000000000fffffffff0000000000000@example.com"
    assert not complaints.is_outlook_complaint(corpus_mail(*SISIMAI, "arf-16.eml"))


def test_apple_mail_unsubscribe_request_is_an_opt_out_by_its_sender():
    report = complaints.unsubscribe_request(corpus_mail(*SISIMAI, "arf-26.eml"))
    assert report.feedback_type == "opt-out"
    assert report.original_recipients == ["example@icloud.com"]


def test_ses_bounce_notification_inside_an_sns_envelope():
    message = corpus_mail(*SISIMAI, "lhost-amazonses-10.eml")
    assert amazon_ses.is_ses_notification(message)
    notification = amazon_ses.ses_notification(message)
    assert notification is not None
    assert amazon_ses.ses_kind(notification) == "Bounce"
    report = amazon_ses.ses_bounce(notification)
    assert [(r.address, r.status, r.permanent) for r in report.recipients] == [
        ("bounce@simulator.amazonses.com", "5.1.1", True)
    ]
    assert report.recipients[0].diagnostic == "550 5.1.1 user unknown"


def test_ses_raw_complaint_and_delivery_notifications():
    complaint = amazon_ses.ses_notification(corpus_mail(*SISIMAI, "lhost-amazonses-11.eml"))
    assert complaint is not None
    report = amazon_ses.ses_complaint(complaint)
    assert (report.feedback_type, report.original_recipients) == (
        "abuse",
        ["complaint@simulator.amazonses.com"],
    )
    delivery = amazon_ses.ses_notification(corpus_mail(*SISIMAI, "lhost-amazonses-12.eml"))
    assert delivery is not None
    assert amazon_ses.ses_delivered(delivery) == ["success@simulator.amazonses.com"]


def test_sns_mail_without_a_notification_is_recognised_as_such():
    message = parse_mail(
        b"From: AWS Notifications <no-reply@sns.amazonaws.com>\r\nSubject: Confirm\r\n\r\n"
        b"You have chosen to subscribe to the topic. {not json}\r\n"
    )
    assert amazon_ses.is_ses_notification(message)
    assert amazon_ses.ses_notification(message) is None
