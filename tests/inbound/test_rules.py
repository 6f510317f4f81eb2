"""Each classification rule on its own: what it recognises and what it leaves alone."""

from __future__ import annotations

import pytest

from helpdesk.inbound import rules
from helpdesk.inbound.rules import MailKind, RuleContext
from tests.inbound.conftest import build_mail, corpus_mail

PLAIN = {"From": "Jane Doe <jane@example.org>", "To": "info@pycon.test", "Subject": "Hi"}
NO_CONTEXT = RuleContext()
SISIMAI = ("sisimai-set-of-emails", "maildir", "bsd")


def mail_with(**headers: str):
    """A plain personal mail plus the given headers (underscores become dashes)."""
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return build_mail({**PLAIN, **extra})


def test_plain_personal_mail_fires_no_rule():
    message = build_mail(PLAIN)
    assert [rule.__name__ for rule in rules.RULES if rule(message, NO_CONTEXT)] == []


# -- own_mail --------------------------------------------------------------------------


def test_own_mail_recognises_our_message_id():
    message = mail_with(Message_ID="<abc.123@helpdesk.pycon.test>")
    context = RuleContext(is_own_message_id=lambda mid: mid == "abc.123@helpdesk.pycon.test")
    assert rules.own_mail(message, context) is MailKind.AUTO_REPLY


def test_own_mail_ignores_foreign_message_ids_and_replies_to_ours():
    message = mail_with(
        Message_ID="<reply.1@example.org>", In_Reply_To="<abc.123@helpdesk.pycon.test>"
    )
    context = RuleContext(is_own_message_id=lambda mid: mid == "abc.123@helpdesk.pycon.test")
    assert rules.own_mail(message, context) is None


def test_own_mail_recognises_our_origin_stamp_but_not_another_installations():
    ours = mail_with(X_Helpdesk_Origin="Helpdesk.PyCon.test")
    theirs = mail_with(X_Helpdesk_Origin="helpdesk.other-conference.test")
    context = RuleContext(own_origin="helpdesk.pycon.test")
    assert rules.own_mail(ours, context) is MailKind.AUTO_REPLY
    assert rules.own_mail(theirs, context) is None
    assert rules.own_mail(ours, NO_CONTEXT) is None


# -- complaints ------------------------------------------------------------------------


def test_feedback_report_recognises_arf_with_and_without_the_report_type_parameter():
    assert rules.feedback_report(corpus_mail(*SISIMAI, "arf-01.eml"), NO_CONTEXT) == "complaint"
    # arf-15 declares no report-type; its message/feedback-report part decides.
    assert rules.feedback_report(corpus_mail(*SISIMAI, "arf-15.eml"), NO_CONTEXT) == "complaint"
    assert rules.feedback_report(corpus_mail(*SISIMAI, "rfc3464-01.eml"), NO_CONTEXT) is None


def test_outlook_feedback_loop_recognises_the_wrapped_reported_mail():
    assert rules.outlook_feedback_loop(corpus_mail(*SISIMAI, "arf-22.eml"), NO_CONTEXT) == (
        MailKind.COMPLAINT
    )
    assert (
        rules.outlook_feedback_loop(
            mail_with(Subject="Complaint about message from me"), NO_CONTEXT
        )
        is None
    )


def test_unsubscribe_request_recognises_apple_mail_opt_out():
    assert rules.unsubscribe_request(corpus_mail(*SISIMAI, "arf-26.eml"), NO_CONTEXT) == (
        MailKind.COMPLAINT
    )
    assert rules.unsubscribe_request(mail_with(X_Apple_Unsubscribe="false"), NO_CONTEXT) is None


# -- bounces ---------------------------------------------------------------------------


def test_ses_notification_recognises_the_sns_sender_only():
    assert (
        rules.ses_notification(corpus_mail(*SISIMAI, "lhost-amazonses-09.eml"), NO_CONTEXT)
        is MailKind.BOUNCE
    )
    assert rules.ses_notification(mail_with(From="no-reply@aws.example.org"), NO_CONTEXT) is None


def test_delivery_status_report_recognises_dsn_content_types():
    assert rules.delivery_status_report(corpus_mail(*SISIMAI, "rfc3464-01.eml"), NO_CONTEXT) == (
        MailKind.BOUNCE
    )
    assert rules.delivery_status_report(corpus_mail(*SISIMAI, "arf-01.eml"), NO_CONTEXT) is None
    assert rules.delivery_status_report(build_mail(PLAIN), NO_CONTEXT) is None


def test_failed_recipients_header_recognises_exim_and_gmail_bounces():
    message = mail_with(X_Failed_Recipients="gone@example.org")
    assert rules.failed_recipients_header(message, NO_CONTEXT) is MailKind.BOUNCE
    assert rules.failed_recipients_header(build_mail(PLAIN), NO_CONTEXT) is None


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.org",
        "Mail Delivery System <mailer-daemon@example.org>",
        "postmaster@example.org",
        "Mail Delivery Subsystem <root@mx.example.org>",
        "MAILER-DAEMON <>",
        "<>",
        "mailer-daemon",
    ],
)
def test_mailer_daemon_sender_recognises_delivery_systems(sender):
    assert rules.mailer_daemon_sender(mail_with(From=sender), NO_CONTEXT) is MailKind.BOUNCE


@pytest.mark.parametrize(
    "sender",
    ["Jane Doe <jane@example.org>", "Daemon Fan <daemons@example.org>", "post@example.org"],
)
def test_mailer_daemon_sender_leaves_people_alone(sender):
    assert rules.mailer_daemon_sender(mail_with(From=sender), NO_CONTEXT) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Undelivered Mail Returned to Sender",
        "Mail delivery failed: returning message to sender",
        "Delivery Status Notification (Failure)",
        "Undeliverable: Your talk proposal",
        "Returned mail: see transcript for details",
        "failure notice",
        "Delivery Failure",
        "Unzustellbar: Ihre Anmeldung",
    ],
)
def test_bounce_subject_recognises_delivery_system_subjects(subject):
    assert rules.bounce_subject(mail_with(Subject=subject), NO_CONTEXT) is MailKind.BOUNCE


@pytest.mark.parametrize(
    "subject",
    [
        "Fwd: Undelivered Mail Returned to Sender",
        "Re: failure notice in the CfP form",
        "My ticket delivery failed, can you resend?",
        "Returned goods",
    ],
)
def test_bounce_subject_leaves_human_subjects_alone(subject):
    assert rules.bounce_subject(mail_with(Subject=subject), NO_CONTEXT) is None


def test_read_receipt_recognises_disposition_notifications():
    message = build_mail(
        {
            **PLAIN,
            "Content-Type": 'multipart/report; report-type=disposition-notification; boundary="b"',
        },
        "--b\r\nContent-Type: text/plain\r\n\r\nRead.\r\n--b--\r\n",
    )
    assert rules.read_receipt(message, NO_CONTEXT) is MailKind.AUTO_REPLY
    assert rules.read_receipt(build_mail(PLAIN), NO_CONTEXT) is None


# -- auto-replies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto-replied", MailKind.AUTO_REPLY),
        ("auto-generated (failure)", MailKind.AUTO_REPLY),
        ("auto-notified; owner-email=x@example.org", MailKind.AUTO_REPLY),
        ("no", None),
        ("No (a person wrote this)", None),
    ],
)
def test_auto_submitted_follows_rfc_3834(value, expected):
    assert rules.auto_submitted(mail_with(Auto_Submitted=value), NO_CONTEXT) == expected


@pytest.mark.parametrize(
    "header",
    ["X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoreply-From", "X-Mail-Autoreply"],
)
def test_autoreply_headers_recognise_vendor_headers(header):
    message = build_mail({**PLAIN, header: "yes"})
    assert rules.autoreply_headers(message, NO_CONTEXT) is MailKind.AUTO_REPLY


def test_autoreply_headers_ignore_explicit_no_and_unrelated_headers():
    assert rules.autoreply_headers(mail_with(X_Autoreply="no"), NO_CONTEXT) is None
    assert rules.autoreply_headers(mail_with(X_Autogenerated="Mirror"), NO_CONTEXT) is None
    assert rules.autoreply_headers(mail_with(X_Autogenerated="Reply"), NO_CONTEXT) == "auto_reply"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("All", MailKind.AUTO_REPLY),
        ("OOF, AutoReply", MailKind.AUTO_REPLY),
        ("DR, RN, NRN", None),
    ],
)
def test_auto_response_suppress_marks_exchange_automatic_mail(value, expected):
    message = mail_with(X_Auto_Response_Suppress=value)
    assert rules.auto_response_suppress(message, NO_CONTEXT) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bulk", MailKind.BULK),
        ("junk", MailKind.BULK),
        ("auto_reply", MailKind.AUTO_REPLY),
        ("list", MailKind.BULK),
        ("first-class", None),
    ],
)
def test_precedence_values(value, expected):
    assert rules.precedence(mail_with(Precedence=value), NO_CONTEXT) == expected


def test_precedence_list_through_our_own_group_is_not_bulk():
    message = mail_with(Precedence="list", List_Id="Program Committee <program.pycon.test>")
    ours = RuleContext(own_list_ids=frozenset({"program.pycon.test"}))
    assert rules.precedence(message, ours) is None
    assert rules.precedence(message, NO_CONTEXT) is MailKind.BULK


def test_mailing_list_is_bulk_unless_it_is_our_group():
    message = mail_with(List_Id="<announce.python.example>")
    assert rules.mailing_list(message, NO_CONTEXT) is MailKind.BULK
    ours = RuleContext(own_list_ids=frozenset({"announce.python.example"}))
    assert rules.mailing_list(message, ours) is None
    assert rules.mailing_list(mail_with(X_MLServer="fml 4.0"), NO_CONTEXT) is MailKind.BULK
    assert rules.mailing_list(build_mail(PLAIN), NO_CONTEXT) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Your talk proposal",
        "Out of office",
        "Automatic reply: Sponsorship",
        "Autoreply: Sponsorship",
        "Auto-Reply - travel grant",
        "[Auto-Reply] Re: CfP",
        "AutoRespons :Nyaan?",
        "Abwesenheitsnotiz: Ihr Vortrag",
        "Automatische Antwort: Sponsoring",
        "Abwesend",
        "Réponse automatique : votre proposition",
        "AUTO: Jane Doe is out of the office (returning 05/05/2025)",
    ],
)
def test_out_of_office_subject_recognises_automatic_subjects(subject):
    assert rules.out_of_office_subject(mail_with(Subject=subject), NO_CONTEXT) == "auto_reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office next week - can someone cover the booth?",
        "Holiday plans for the sprints",
        "Urlaub / Abwesenheit im August",
        "Re: Out of Office: Your talk proposal",
        "Automatic reply needed?",
        "Auto: my car broke down, arriving late",
        "Vacation days and the conference schedule",
    ],
)
def test_out_of_office_subject_leaves_ordinary_subjects_alone(subject):
    assert rules.out_of_office_subject(mail_with(Subject=subject), NO_CONTEXT) is None


def test_out_of_office_subject_decodes_encoded_words():
    message = mail_with(Subject="=?utf-8?q?Automatische_Antwort=3A_R=C3=BCckfrage?=")
    assert rules.out_of_office_subject(message, NO_CONTEXT) is MailKind.AUTO_REPLY
