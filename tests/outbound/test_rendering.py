"""The message a recipient gets: structure, encoding, headers, substitutions, refusals."""

from __future__ import annotations

import email
import email.policy

import pytest

from helpdesk.outbound.backends import (
    InvalidMail,
    OutgoingAttachment,
    OutgoingBatch,
    Recipient,
    render_for_recipient,
)
from helpdesk.outbound.backends.mime import FILE_POLICY, envelope_recipients
from helpdesk.outbound.backends.substitution import substitute
from helpdesk.outbound.backends.validation import parse_address, sort_out
from tests.outbound.conftest import make_batch


def reparse(message) -> email.message.EmailMessage:
    return email.message_from_bytes(
        message.as_bytes(policy=FILE_POLICY), policy=email.policy.default
    )


def test_text_only_mail_is_a_single_text_part():
    batch = make_batch(html=None)
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Dear Person 0,\nyour code is C00000.\n"


def test_html_mail_is_text_then_html_alternative():
    batch = make_batch()
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message.get_body(("html",)).get_content().strip() == (
        "<p>Dear Person 0, your code is <b>C00000</b>.</p>"
    )


def test_html_only_mail_when_text_is_empty():
    batch = make_batch(text="")
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message.get_content_type() == "text/html"


def test_attachments_wrap_the_body_in_multipart_mixed():
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 10
    batch = make_batch(attachments=[OutgoingAttachment("Prüfung.pdf", "application/pdf", pdf)])
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = list(message.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert attachment.get_filename() == "Prüfung.pdf"
    assert attachment.get_content() == pdf


def test_non_ascii_names_and_subject_are_rfc2047_encoded_and_read_back():
    batch = OutgoingBatch(
        from_addr="Konferenz Büro <office@conference.example>",
        subject="Grüße, -name-! Ваш билет готов",
        text="Hallo -name-",
        recipients=[Recipient(to=["Zoë Ñandú <zoe@example.com>"], substitutions={"-name-": "Zoë"})],
    )
    raw = render_for_recipient(batch, batch.recipients[0]).as_bytes(policy=FILE_POLICY)
    headers = raw.split(b"\n\n", 1)[0]
    assert headers.isascii()
    assert b"=?utf-8?" in headers
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Grüße, Zoë! Ваш билет готов"
    assert message["To"].addresses[0].display_name == "Zoë Ñandú"
    assert message["From"].addresses[0].display_name == "Konferenz Büro"
    assert message.get_content() == "Hallo Zoë\n"


def test_threading_headers_are_preserved():
    batch = OutgoingBatch(
        from_addr="program@conference.example",
        subject="Re: [#42] Talk slot",
        text="See you there.",
        headers={
            "In-Reply-To": "<original-1@mail.example>",
            "References": "<start-0@mail.example> <original-1@mail.example>",
            "Auto-Submitted": "auto-replied",
        },
        recipients=[
            Recipient(to=["speaker@example.com"], headers={"Message-ID": "<r-42@x.example>"})
        ],
    )
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message["In-Reply-To"] == "<original-1@mail.example>"
    assert message["References"] == "<start-0@mail.example> <original-1@mail.example>"
    assert message["Message-ID"] == "<r-42@x.example>"
    assert message["Auto-Submitted"] == "auto-replied"


def test_a_message_id_and_date_are_added_when_missing():
    batch = OutgoingBatch(
        from_addr="office@conference.example",
        subject="s",
        text="t",
        recipients=[Recipient(to=["a@example.com"])],
    )
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message["Message-ID"].endswith("@conference.example>")
    assert message["Date"].datetime is not None


def test_recipient_headers_override_shared_ones_case_insensitively():
    batch = make_batch(headers={"X-Campaign": "shared"})
    batch.recipients[0].headers["x-campaign"] = "own"
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message.get_all("X-Campaign") == ["own"]


def test_long_list_unsubscribe_stays_readable():
    url = "https://conference.example/unsubscribe/" + "t" * 180
    batch = make_batch()
    batch.recipients[0].headers["List-Unsubscribe"] = f"<{url}>, <mailto:u@conference.example>"
    raw = render_for_recipient(batch, batch.recipients[0]).as_bytes(policy=FILE_POLICY)
    assert b"=?" not in raw.split(b"\n\n", 1)[0].split(b"List-Unsubscribe:")[1].split(b"\n")[0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["List-Unsubscribe"] == f"<{url}>, <mailto:u@conference.example>"


def test_bcc_is_delivered_but_never_written_into_the_message():
    batch = make_batch()
    batch.recipients[0].cc = ["Doe, John <john@example.com>"]
    batch.recipients[0].bcc = ["archive@conference.example"]
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert "Bcc" not in message
    assert message["Cc"].addresses[0].display_name == "Doe, John"
    assert envelope_recipients(batch.recipients[0]) == [
        "person0@example.com",
        "john@example.com",
        "archive@conference.example",
    ]


def test_substitution_is_one_pass_longest_tag_first_and_case_sensitive():
    values = {"-name-": "Ann -code-", "-name-full-": "Ann Lee", "-code-": "42"}
    assert substitute("-name-full- / -name- / -NAME-", values) == "Ann Lee / Ann -code- / -NAME-"
    assert substitute("nothing here", {}) == "nothing here"


def test_substitutions_apply_to_subject_text_and_html_but_not_headers():
    batch = make_batch(headers={"X-Note": "-name-"})
    message = reparse(render_for_recipient(batch, batch.recipients[0]))
    assert message["Subject"] == "Hello Person 0"
    assert message["X-Note"] == "-name-"


def test_parse_address_forms():
    assert parse_address("a@example.com") == ("", "a@example.com")
    assert parse_address('"Doe, John" <j@example.com>') == ("Doe, John", "j@example.com")
    assert parse_address("Doe, John <j@example.com>") == ("Doe, John", "j@example.com")
    assert parse_address("=?utf-8?q?Zo=C3=AB?= <z@example.com>") == ("Zoë", "z@example.com")
    assert parse_address("Jörg <j@müller.example>") == ("Jörg", "j@xn--mller-kva.example")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: setattr(b.recipients[0], "to", ["not an address"]), "not a valid mail address"),
        (lambda b: setattr(b.recipients[0], "to", ["zoë@example.com"]), "SMTPUTF8"),
        (lambda b: setattr(b.recipients[0], "to", []), "at least one To"),
        (lambda b: b.recipients[0].headers.update({"X-Evil": "a\r\nBcc: x@y.z"}), "line break"),
        (lambda b: b.recipients[0].headers.update({"Bad Name": "v"}), "not a valid header name"),
        (lambda b: b.recipients[0].headers.update({"Subject": "v"}), "may not be given"),
        (lambda b: b.recipients[0].headers.update({"DKIM-Signature": "v"}), "may not be given"),
        (lambda b: b.recipients[0].substitutions.update({"-name-": "x\nBcc: y@z"}), "subject"),
        (lambda b: b.recipients[0].custom_args.update({"n": 5}), "must be a string"),
    ],
)
def test_a_malformed_copy_fails_alone_with_a_clear_error(change, message):
    batch = make_batch(3)
    change(batch)
    sendable, refused = sort_out(batch)
    assert sendable == [1, 2]
    assert [r.index for r in refused] == [0]
    assert refused[0].outcome == "permanent"
    assert message in refused[0].error
    with pytest.raises(InvalidMail, match=message):
        render_for_recipient(batch, batch.recipients[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: setattr(b, "from_addr", "nobody"), "not a valid mail address"),
        (lambda b: setattr(b, "reply_to", "x@"), "not a valid mail address"),
        (lambda b: (setattr(b, "text", ""), setattr(b, "html", None)), "neither text nor html"),
        (lambda b: b.headers.update({"Message-ID": "<same@x.example>"}), "Message-ID"),
        (lambda b: b.headers.update({"Content-Type": "text/plain"}), "may not be given"),
        (
            lambda b: b.attachments.append(OutgoingAttachment("a.bin", "nonsense", b"x")),
            "invalid type",
        ),
        (
            lambda b: b.attachments.append(OutgoingAttachment(" ", "text/plain", b"x")),
            "no file name",
        ),
    ],
)
def test_a_malformed_batch_fails_every_copy_with_the_reason(change, message):
    batch = make_batch(2)
    change(batch)
    sendable, refused = sort_out(batch)
    assert sendable == []
    assert [(r.index, r.outcome) for r in refused] == [(0, "permanent"), (1, "permanent")]
    assert all(message in r.error for r in refused)
