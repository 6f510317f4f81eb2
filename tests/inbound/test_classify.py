"""classify(): which kind wins, which rules are reported, what reports come with it."""

from __future__ import annotations

from email.message import Message

from helpdesk.inbound.classify import ORIGIN_HEADER, MailKind, classify, origin_token
from tests.inbound.conftest import build_mail, corpus_mail, parse_mail
from tests.inbound.test_bounces import ORIGINAL, TWO_RECIPIENTS, dsn

SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")
PERSON = {
    "From": "Jane Doe <jane@example.org>",
    "To": "program@pycon.test",
    "Subject": "Question about my talk",
    "Message-ID": "<CAF1234@mail.example.org>",
}


def test_a_personal_mail_is_personal_and_no_rule_fires():
    result = classify(build_mail(PERSON))
    assert (result.kind, result.rules, result.bounce, result.complaint) == (
        MailKind.PERSONAL,
        [],
        None,
        None,
    )
    assert not result.own_mail


def test_every_rule_that_fires_is_named_and_the_strongest_kind_wins():
    message = build_mail(
        {
            **PERSON,
            "From": "MAILER-DAEMON@mx.example.net",
            "Subject": "Undelivered Mail Returned to Sender",
            "Auto-Submitted": "auto-replied",
            "Precedence": "bulk",
        },
        "<gone@example.org>: host mx said: 550 5.1.1 no such user\n",
    )
    result = classify(message)
    assert result.kind is MailKind.BOUNCE
    assert result.rules == [
        "mailer_daemon_sender",
        "bounce_subject",
        "auto_submitted",
        "precedence",
    ]
    assert result.bounce is not None
    assert [r.address for r in result.bounce.recipients] == ["gone@example.org"]


def test_our_own_mail_coming_back_is_named_own_mail_and_carries_no_report():
    stamped = build_mail({**PERSON, ORIGIN_HEADER: "helpdesk.pycon.test", "Precedence": "list"})
    result = classify(stamped, own_origin="helpdesk.pycon.test")
    assert result.own_mail
    assert result.kind is MailKind.AUTO_REPLY
    assert result.rules[0] == "own_mail"

    ours = {"CAF1234@mail.example.org"}
    by_id = classify(build_mail(PERSON), is_own_message_id=ours.__contains__)
    assert by_id.own_mail
    assert not classify(build_mail(PERSON), is_own_message_id=set().__contains__).own_mail


def test_mail_through_our_own_group_is_personal_and_through_another_list_bulk():
    via_group = {**PERSON, "Precedence": "list", "List-Id": "Program <program.pycon.test>"}
    assert classify(build_mail(via_group), own_list_ids={"program.pycon.test"}).kind == (
        MailKind.PERSONAL
    )
    result = classify(build_mail(via_group))
    assert (result.kind, result.rules) == (MailKind.BULK, ["precedence", "mailing_list"])


def test_an_auto_reply_through_our_group_is_still_an_auto_reply():
    message = build_mail(
        {
            **PERSON,
            "Subject": "Automatic reply: Question about my talk",
            "Precedence": "list",
            "List-Id": "<program.pycon.test>",
        }
    )
    result = classify(message, own_list_ids={"<program.pycon.test>"})
    assert (result.kind, result.rules) == (MailKind.AUTO_REPLY, ["out_of_office_subject"])


def test_a_dsn_is_a_bounce_with_its_report():
    result = classify(parse_mail(dsn(TWO_RECIPIENTS, original=ORIGINAL)))
    assert result.kind is MailKind.BOUNCE
    assert "delivery_status_report" in result.rules
    assert result.bounce is not None
    assert [(r.address, r.permanent) for r in result.bounce.recipients] == [
        ("gone@example.org", True),
        ("full@example.org", False),
    ]
    assert result.bounce.original_message_id == "ack.42@helpdesk.pycon.test"


def test_a_dsn_of_successful_delivery_is_a_receipt_not_a_bounce():
    result = classify(corpus_mail(*SISIMAI, "rfc3464-28.eml"))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.bounce is not None
    assert result.bounce.recipients == []
    # Postfix address verification ("Action: deliverable"). The file also carries a second
    # report after the first one's closing boundary; that epilogue is not part of the mail.
    assert result.bounce.delivered == ["kijitora@neko.example.jp"]


def test_a_broken_dsn_is_read_from_its_prose():
    # The status part names "@mx.example.org" only; the prose names the mailbox.
    result = classify(corpus_mail(*SISIMAI, "lhost-sendmail-15.eml"))
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert [r.address for r in result.bounce.recipients] == ["kijitora@example.org"]


def test_a_bounce_naming_nobody_is_still_a_bounce():
    message = build_mail(
        {**PERSON, "From": "MAILER-DAEMON@mx.example.net", "Subject": "failure notice"},
        "Something went wrong.\n",
    )
    result = classify(message)
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert result.bounce.recipients == []


def test_complaints_come_with_their_report():
    arf = classify(corpus_mail(*SISIMAI, "arf-18.eml"))
    assert (arf.kind, arf.rules[0]) == (MailKind.COMPLAINT, "feedback_report")
    assert arf.complaint is not None
    assert arf.complaint.feedback_type == "auth-failure"
    outlook = classify(corpus_mail(*SISIMAI, "arf-23.eml"))
    assert "outlook_feedback_loop" in outlook.rules
    apple = classify(corpus_mail(*SISIMAI, "arf-26.eml"))
    assert apple.complaint is not None
    assert apple.complaint.feedback_type == "opt-out"


def test_ses_notifications_become_bounce_complaint_or_receipt():
    bounce = classify(corpus_mail(*SISIMAI, "lhost-amazonses-09.eml"))
    assert bounce.kind is MailKind.BOUNCE
    assert bounce.bounce is not None
    assert bounce.bounce.source == "ses"
    complaint = classify(corpus_mail(*SISIMAI, "lhost-amazonses-11.eml"))
    assert complaint.kind is MailKind.COMPLAINT
    receipt = classify(corpus_mail(*SISIMAI, "lhost-amazonses-13.eml"))
    assert receipt.kind is MailKind.AUTO_REPLY


class _SealedBody(Message):
    """A mail whose body must not be read: touching it fails the test."""

    def get_payload(self, *args, **kwargs):
        """Refuse: ordinary mail must be classified from its headers."""
        raise AssertionError("classify read the body of an ordinary mail")

    def walk(self):
        """Refuse: ordinary mail must be classified from its headers."""
        raise AssertionError("classify walked the parts of an ordinary mail")


def test_classify_reads_only_headers_of_ordinary_mail():
    message = _SealedBody()
    for name, value in {**PERSON, "Content-Type": "multipart/mixed; boundary=x"}.items():
        message[name] = value
    assert classify(message).kind is MailKind.PERSONAL
    message.replace_header("Subject", "Automatic reply: away")
    assert classify(message).kind is MailKind.AUTO_REPLY


def test_origin_token_is_the_host_we_are_reached_at():
    assert origin_token("https://Helpdesk.PyCon.test/") == "helpdesk.pycon.test"
    assert origin_token("http://127.0.0.1:5000") == "127.0.0.1"
