"""parse(): raw bytes to InboundMail, field by field, and what is not mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from helpdesk.inbound.parse import Address, NotMail, parse
from tests.support.corpus import read

SIMPLE = (
    b"Return-Path: <bounce@lists.example.org>\r\n"
    b"Delivered-To: info@pycon.example\r\n"
    b"Delivered-To: helpdesk@pycon.example\r\n"
    b"X-Original-To: info@pycon.example\r\n"
    b"Message-ID: <abc.123@mail.example.com>\r\n"
    b"In-Reply-To: <first@example.com> (Jane's message of Monday)\r\n"
    b"References: <root@example.com>\r\n <first@example.com>\r\n"
    b"List-Id: PyCon Info <Info.PyCon.Example>\r\n"
    b"Date: Tue, 13 Apr 2021 12:56:39 +0200 (CEST)\r\n"
    b"From: =?utf-8?q?Jos=C3=A9_Garc=C3=ADa?= <jose@example.com>\r\n"
    b"Sender: Lists <lists@example.org>\r\n"
    b"Reply-To: Team <team@example.com>, other@example.com\r\n"
    b'To: "Doe, Jane" <jane@example.com>, info@pycon.example\r\n'
    b"Cc: =?iso-8859-1?q?Fran=E7ois?= <fr@example.fr>\r\n"
    b"Subject: =?utf-8?b?VGlja2V0czog?=\r\n =?utf-8?b?w6lsw6h2ZQ==?= folded\r\n"
    b"\tsubject\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello,\r\nI need a ticket.\r\n"
)


def test_parse_reads_identity_and_thread_headers() -> None:
    mail = parse(SIMPLE)
    assert mail.message_id == "abc.123@mail.example.com"
    assert mail.in_reply_to == ["first@example.com"]
    assert mail.references == ["root@example.com", "first@example.com"]
    assert mail.list_id == "info.pycon.example"


def test_parse_decodes_and_unfolds_the_subject() -> None:
    assert parse(SIMPLE).subject == "Tickets: élève folded subject"


def test_parse_reads_every_address_header() -> None:
    mail = parse(SIMPLE)
    assert mail.from_ == Address("José García", "jose@example.com")
    assert mail.sender == Address("Lists", "lists@example.org")
    assert mail.reply_to == [Address("Team", "team@example.com"), Address("", "other@example.com")]
    assert mail.to == [Address("Doe, Jane", "jane@example.com"), Address("", "info@pycon.example")]
    assert mail.cc == [Address("François", "fr@example.fr")]
    assert mail.delivered_to == ["info@pycon.example", "helpdesk@pycon.example"]
    assert mail.x_original_to == ["info@pycon.example"]


def test_parse_gives_an_aware_date() -> None:
    date = parse(SIMPLE).date
    assert date == datetime(2021, 4, 13, 10, 56, 39, tzinfo=UTC)
    assert date is not None
    assert date.utcoffset() is not None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Date: Fri, 8 Mar 2019 23:40:04\r\n", datetime(2019, 3, 8, 23, 40, 4, tzinfo=UTC)),
        (b"Date: next tuesday-ish\r\n", None),
        (b"", None),
    ],
    ids=["no-zone-read-as-utc", "nonsense", "missing"],
)
def test_parse_tolerates_odd_dates(header: bytes, expected: datetime | None) -> None:
    mail = parse(b"From: a@example.com\r\n" + header + b"Subject: x\r\n\r\nbody\r\n")
    assert mail.date == expected


def test_parse_normalises_body_newlines() -> None:
    assert parse(SIMPLE).text == "Hello,\nI need a ticket.\n"


def test_header_and_headers_return_decoded_values() -> None:
    mail = parse(SIMPLE)
    assert mail.header("delivered-to") == "info@pycon.example"
    assert mail.headers("Delivered-To") == ["info@pycon.example", "helpdesk@pycon.example"]
    assert mail.header("cc") == "François <fr@example.fr>"
    assert mail.header("x-missing") is None
    assert mail.headers("x-missing") == []


def test_parse_keeps_raw_bytes_and_the_message_tree() -> None:
    mail = parse(SIMPLE)
    assert mail.raw == SIMPLE
    assert mail.message["Message-ID"] == "<abc.123@mail.example.com>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"<>", None),
        (b"no id here", None),
        (b"bare.id@example.com", "bare.id@example.com"),
        (b"< spaced@example.com >", "spaced@example.com"),
    ],
)
def test_message_id_is_none_when_unusable(value: bytes, expected: str | None) -> None:
    mail = parse(b"Message-ID: " + value + b"\r\nFrom: a@example.com\r\n\r\nx\r\n")
    assert mail.message_id == expected


def test_missing_headers_give_empty_values() -> None:
    mail = parse(b"X-Only: header\r\n\r\nbody")
    assert (mail.subject, mail.from_, mail.to, mail.cc) == ("", None, [], [])
    assert (mail.message_id, mail.date, mail.list_id) == (None, None, None)
    assert mail.text == "body"


def test_raw_utf8_headers_are_decoded() -> None:
    mail = parse(read("ruby-mail-gem/rfc6532/utf8_headers.eml"))
    assert "\ufffd" not in mail.subject
    assert mail.subject.isascii() is False


def test_raw_8bit_headers_fall_back_to_the_body_charset() -> None:
    raw = (
        "Subject: Caf\xe9 cr\xe8me\r\nFrom: Ren\xe9 <rene@example.fr>\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9\r\n"
    ).encode("latin-1")
    mail = parse(raw)
    assert mail.subject == "Café crème"
    assert mail.from_ == Address("René", "rene@example.fr")
    assert mail.text == "Café\n"
    assert mail.header_charset == "iso-8859-1"
    assert mail.header("subject") == "Café crème"


def test_mbox_from_line_is_not_a_header() -> None:
    mail = parse(b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nSubject: hi\nFrom: a@b.example\n\n")
    assert mail.subject == "hi"
    assert mail.from_ == Address("", "a@b.example")


def test_spaced_field_names_of_obsolete_syntax_are_read() -> None:
    mail = parse(b"From  : John <j@example.com>\r\nSubject     : Saying Hello\r\n\r\nHello.\r\n")
    assert mail.subject == "Saying Hello"
    assert mail.from_ == Address("John", "j@example.com")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty input"),
        (b"   \r\n\t\n", "empty input"),
        (b"22\n", "no header fields"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "no header fields"),
        (b"<html><body>not a mail</body></html>", "no header fields"),
    ],
    ids=["empty", "whitespace", "digits", "png", "html"],
)
def test_not_mail_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(NotMail) as caught:
        parse(raw)
    assert reason in caught.value.reason


def test_outlook_msg_file_is_not_mail() -> None:
    with pytest.raises(NotMail, match="Outlook"):
        parse(read("mail-parser/mail_outlook_1"))


def test_oversized_mail_keeps_headers_and_skips_parts() -> None:
    raw = read("mail-parser/mail_test_2")
    mail = parse(raw, max_size=10_000)
    assert mail.oversized is True
    assert mail.subject == "Bollettino Meteorologico del 29/11/2015"
    assert mail.from_ is not None
    assert (mail.text, mail.html, mail.attachments) == ("", None, [])
    assert any("oversized" in defect for defect in mail.defects)
    assert mail.raw == raw


def test_a_tiny_size_limit_still_reads_the_whole_header_block() -> None:
    mail = parse(SIMPLE, max_size=0)
    assert mail.oversized is True
    assert mail.subject == "Tickets: élève folded subject"
    assert mail.message_id == "abc.123@mail.example.com"


def test_mail_under_the_size_limit_is_parsed_whole() -> None:
    raw = read("mail-parser/mail_test_2")
    mail = parse(raw, max_size=len(raw))
    assert mail.oversized is False
    assert len(mail.attachments) == 3


def test_a_mail_that_trips_mail_parsers_analysis_parses() -> None:
    # mail-parser's full analysis raises on this bounce; only its tree and its header
    # parsers are used, so nothing is lost.
    mail = parse(read("sisimai-set-of-emails/maildir/bsd/lhost-sendgrid-01.eml"))
    assert mail.subject
    assert mail.from_ is not None
    assert mail.text
    assert mail.date is not None


def test_broken_encoded_names_do_not_stop_parsing() -> None:
    raw = b"From: =?utf-8?b?x?= <a@b.example>\r\nSender: =?utf-8?b?x?= <s@b.example>\r\n\r\nbody"
    mail = parse(raw)
    assert mail.from_ is not None
    assert mail.from_.address == "a@b.example"
    assert mail.sender is not None
    assert mail.sender.address == "s@b.example"
    assert mail.text == "body"


def test_defects_are_reported_as_text() -> None:
    mail = parse(read("flanker/missing-final-boundary.eml"))
    assert mail.defects
    assert all(isinstance(defect, str) for defect in mail.defects)


def test_unknown_charset_is_a_defect_not_an_error() -> None:
    raw = b"From: a@example.com\nContent-Type: text/plain; charset=x-bogus\n\nplain \xe9t\xe9\n"
    mail = parse(raw)
    assert mail.text == "plain été\n"
    assert any("x-bogus" in defect for defect in mail.defects)


def test_text_never_holds_nul_or_lone_surrogates() -> None:
    raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+2D3-\x00x\r\n"
    text = parse(raw).text
    assert "\x00" not in text
    text.encode("utf-8")
