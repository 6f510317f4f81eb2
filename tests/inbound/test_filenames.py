"""Attachment filenames: RFC 2231/2047 and raw-byte decoding, and safety for storage."""

from __future__ import annotations

import email

import pytest

from helpdesk.inbound.filenames import MAX_FILENAME, decode_filename, extension_for, safe_filename
from helpdesk.inbound.parse import parse
from tests.support.corpus import read
from tests.support.mime import part


def test_rfc2231_continuations_with_charset_are_joined() -> None:
    found = parse(read("mail-parser/mail_test_5")).attachments
    names = [attachment.filename for attachment in found]
    assert "mailingassets_d68799cd6301c7f5731a3c42946e528bcb78eb84.jpg" in names


def test_rfc2231_japanese_name() -> None:
    mail_ = parse(read("ruby-mail-gem/multi_charset/japanese_attachment_long_name.eml"))
    assert mail_.attachments[0].filename == (
        "かきくけこかきくけこかきくけこかきくけこかきくけこ.txt"
    )


def test_rfc2231_bad_percent_escape_is_read_not_dropped() -> None:
    mail_ = parse(read("ruby-mail-gem/attachment_emails/attachment_with_encoded_name.eml"))
    assert mail_.attachments[0].filename == "01 Quien Te DijŠat. Pitbull.mp3"


def test_rfc2047_encoded_name() -> None:
    mail_ = parse(read("ruby-mail-gem/attachment_emails/attachment_with_base64_encoded_name.eml"))
    assert mail_.attachments[0].filename == "This is a test.pdf"


def test_raw_utf8_name_cut_mid_character() -> None:
    mail_ = parse(read("flanker/russian-attachment-yahoo.eml"))
    assert mail_.attachments[0].filename.startswith("Картинка с очень, очень длинным")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Content-Disposition: attachment; filename*=utf-8''na%C3%AFve.txt"], "naïve.txt"),
        (
            [
                "Content-Disposition: attachment;",
                " filename*0*=iso-8859-1''caf%E9;",
                " filename*1=.txt",
            ],
            "café.txt",
        ),
        (["Content-Disposition: attachment; filename*=utf-8''100%zz.txt"], "100%zz.txt"),
        (
            ['Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf"'],
            "résumé.pdf",
        ),
        (["Content-Disposition: attachment; filename=\"a.txt\"; filename*=utf-8''b.txt"], "b.txt"),
        (["Content-Disposition: attachment"], None),
    ],
    ids=["2231", "continuation-mixed", "bad-escape", "2047-in-quotes", "2231-wins", "none"],
)
def test_decode_filename(headers: list[str], expected: str | None) -> None:
    message = email.message_from_bytes(part("application/octet-stream", "x", *headers))
    assert decode_filename(message) == expected


def test_name_parameter_of_content_type_is_used_as_fallback() -> None:
    message = email.message_from_bytes(part('application/pdf; name="legacy.pdf"', "x"))
    assert decode_filename(message) == "legacy.pdf"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\bob\\report.doc", "report.doc"),
        (".htaccess", "htaccess"),
        ("...", "attachment.pdf"),
        ("in\x00vo\x1bice.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ('what?<>:"|*.txt', "what_______.txt"),
        ("  spaced\u00a0 name .txt ", "spaced name .txt"),
        ("CON.txt", "_CON.txt"),
        ("dir/", "dir"),
        ("", "attachment.pdf"),
        (None, "attachment.pdf"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name, "application/pdf") == expected


def test_long_names_are_capped_and_keep_their_extension() -> None:
    name = safe_filename("x" * 500 + ".tar.gz", "application/gzip")
    assert len(name) == MAX_FILENAME
    assert name.endswith(".gz")


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [
        ("application/pdf", ".pdf"),
        ("image/jpeg", ".jpg"),
        ("text/plain", ".txt"),
        ("message/rfc822", ".eml"),
        ("application/x-made-up", ".bin"),
    ],
)
def test_missing_names_come_from_the_content_type(content_type: str, extension: str) -> None:
    assert extension_for(content_type) == extension
    assert safe_filename(None, content_type) == "attachment" + extension
