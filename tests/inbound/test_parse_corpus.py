"""parse() over the whole shared corpus, and the expectations its READMEs state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpdesk.inbound.parse import parse
from tests.support.corpus import CORPUS, indexed_mails, mail_files, read
from tests.support.parsing import parse_or_reason

# A generous bound: the slowest file (3 MB of nested messages) takes well under a second.
PER_FILE_SECONDS = 10.0
# Files listed as mail in an INDEX.tsv that are not mail at all.
NOT_MAIL = {
    "cpython-email/msg_19.txt": "no header fields",  # a digest body, no header block
    "mail-parser/mail_outlook_1": "OLE compound file",  # a binary Outlook .msg
    "ruby-mail-gem/sample_output_multipart": "empty input",  # a zero-byte file
    "sisimai-set-of-emails/mailbox/size-0": "empty input",
    "sisimai-set-of-emails/mailbox/size-1": "empty input",  # a single space
    "sisimai-set-of-emails/mailbox/size-2": "no header fields",  # "22\n"
}
MAIL_FOLDERS = (
    "cpython-email",
    "django-helpdesk",
    "flanker",
    "flufl-bounce",
    "mail-parser",
    "ruby-mail-gem",
    "sisimai-set-of-emails",
    "talon",
)


@pytest.mark.parametrize("path", mail_files(), ids=lambda path: str(path.relative_to(CORPUS)))
def test_every_corpus_file_parses_or_is_rejected_as_not_mail(path: Path) -> None:
    raw = path.read_bytes()
    started = time.perf_counter()
    outcome = parse_or_reason(raw)
    assert time.perf_counter() - started < PER_FILE_SECONDS
    if isinstance(outcome, str):
        assert outcome  # NotMail always says why
        return
    assert outcome.raw == raw
    for attachment in outcome.attachments:
        assert attachment.filename
        assert "/" not in attachment.filename
        assert "\\" not in attachment.filename
        assert isinstance(attachment.data, bytes)


@pytest.mark.parametrize("folder", MAIL_FOLDERS)
def test_indexed_mails_parse_unless_known_not_to_be_mail(folder: str) -> None:
    rejected = {}
    for relative in indexed_mails(folder):
        outcome = parse_or_reason(read(relative))
        if isinstance(outcome, str):
            rejected[relative] = outcome
    expected = {name: reason for name, reason in NOT_MAIL.items() if name.startswith(folder)}
    assert rejected.keys() == expected.keys()
    for name, reason in expected.items():
        assert reason in rejected[name]


# django-helpdesk/README.txt: what tests/test_get_email.py asserts about each file.


def test_django_helpdesk_special_characters() -> None:
    mail = parse(read("django-helpdesk/all-special-chars.eml"))
    assert mail.subject == "Testovácí email"
    assert mail.text.strip() == "íářčšáíéřášč"


def test_django_helpdesk_blank_body_with_attachment() -> None:
    mail = parse(read("django-helpdesk/blank-body-with-attachment.eml"))
    assert mail.subject.startswith("Attachment without body - and a loooo")
    assert mail.subject.endswith("ooong subject")
    assert len(mail.subject) > 200  # the title field truncates; parsing must not
    assert mail.text.strip() == ""
    [attachment] = mail.attachments
    assert attachment.filename == "baf"
    assert attachment.data == b"You shouldn't see this.\n"


def test_django_helpdesk_forwarded_message_keeps_the_forwarded_text() -> None:
    mail = parse(read("django-helpdesk/forwarded-message.eml"))
    assert "This is email body" in mail.text
    assert "Hello there!" in mail.text


def test_django_helpdesk_pgp_signed_mail() -> None:
    mail = parse(read("django-helpdesk/pgp.eml"))
    assert mail.text.startswith("hi, thanks for looking into this :)")
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("signature.asc", "application/pgp-signature")
    ]
    assert mail.attachments[0].data.startswith(b"-----BEGIN PGP SIGNATURE-----")


def test_django_helpdesk_quoted_printable_keeps_the_html_part() -> None:
    mail = parse(read("django-helpdesk/quoted_printable.eml"))
    assert mail.subject == "Český test"
    assert mail.text.strip() == "Tohle je test českých písmen odeslaných z gmailu."
    # django-helpdesk stores the HTML alternative as a file; here it is kept as the
    # mail's HTML body, for the ingester to store, and not repeated as an attachment.
    assert mail.html is not None
    assert "Tohle je test českých písmen" in mail.html
    assert mail.attachments == []


def test_django_helpdesk_invalid_utf8() -> None:
    mail = parse(read("django-helpdesk/utf-nondecodable.eml"))
    assert mail.subject == "Fwd: Cyklozaměstnavatel - změna vyhodnocení"
    assert "Forwarded Message" in mail.text


# Charsets and encodings named in the corpus READMEs.


@pytest.mark.parametrize(
    ("relative", "subject", "text"),
    [
        ("ruby-mail-gem/multi_charset/japanese_iso_2022.eml", "まみむめも", "すみません。"),
        ("ruby-mail-gem/multi_charset/japanese_shift_jis.eml", "test", "あいうえお"),
        ("ruby-mail-gem/multi_charset/ks_c_5601-1987.eml", "test", "스티해"),
        ("mail-parser/mail_test_12", "代开各地增值税发票", "我公司可代开各类增值税发票"),
        ("flufl-bounce/newmailru_01.txt", "failure notice", "Это сообщение"),
        ("cpython-email/msg_12a.txt", "Lyrics", ""),
    ],
    ids=["iso-2022-jp", "shift_jis", "ks_c_5601", "gb2312", "koi8-r", "empty"],
)
def test_charsets_are_decoded(relative: str, subject: str, text: str) -> None:
    mail = parse(read(relative))
    assert mail.subject == subject
    assert text in mail.text
    assert "\ufffd" not in mail.text


def test_windows_1251_names_are_decoded_even_inside_quotes() -> None:
    mail = parse(read("ruby-mail-gem/plain_emails/raw_email_bad_time.eml"))
    assert mail.from_ is not None
    assert mail.from_.name == "Атиковa"  # the sender mixed scripts
    assert mail.from_.address == "yusuf75thu@auracom.net"


def test_windows_1251_body_is_decoded() -> None:
    body = "Быстрее вкладывайте в золото!".encode("cp1251")
    raw = b"From: a@example.ru\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n" + body
    assert parse(raw).text == "Быстрее вкладывайте в золото!"


def test_utf7_exchange_report_is_decoded() -> None:
    mail = parse(read("flufl-bounce/dsn_13.txt"))
    assert "Delivery to the following recipients failed." in mail.text
    # The label "unicode-1-1-utf-7" is known, so no fallback was needed.
    assert not [defect for defect in mail.defects if "utf-7" in defect]
    raw = b"From: a@example.com\nContent-Type: text/plain; charset=unicode-1-1-utf-7\n\n+AOk-t+AOk-"
    assert parse(raw).text == "été"


@pytest.mark.parametrize(
    "relative",
    [
        "ruby-mail-gem/error_emails/content_transfer_encoding_qp_with_space.eml",
        "ruby-mail-gem/error_emails/content_transfer_encoding_with_semi_colon.eml",
    ],
)
def test_misspelled_transfer_encodings_are_decoded(relative: str) -> None:
    text = parse(read(relative)).text
    assert "=20" not in text
    assert "=3D" not in text
    assert len(text) > 100


def test_line_ending_variants_parse_alike() -> None:
    name = "lhost-postfix-01.eml"
    folder = "sisimai-set-of-emails/maildir"
    mails = [parse(read(f"{folder}/{kind}/{name}")) for kind in ("bsd", "dos", "mac")]
    assert len({mail.subject for mail in mails}) == 1
    assert len({mail.text.strip() for mail in mails}) == 1
    assert len({len(mail.attachments) for mail in mails}) == 1
    assert "\r" not in mails[2].text


def test_missing_boundaries_keep_the_text() -> None:
    mail = parse(read("flanker/missing-boundaries.eml"))
    assert "This is a broken message" in mail.text


def test_no_content_type_is_plain_text() -> None:
    mail = parse(read("flanker/no-ctype.eml"))
    assert mail.text.startswith("Hello,\nI'm just testing message parsing")


def test_long_header_mail() -> None:
    mail = parse(read("flanker/long-header.eml"))
    assert mail.subject.startswith("Die heiße Zypernsonne quälte Max und Victoria")
    assert mail.text == "test"


def test_endless_nesting_becomes_one_attached_message() -> None:
    started = time.perf_counter()
    mail = parse(read("flanker/enclosed-endless.eml"))
    assert time.perf_counter() - started < PER_FILE_SECONDS
    assert mail.subject == "Wow"
    [attachment] = mail.attachments
    assert attachment.filename == "thanks.eml"
    assert attachment.content_type == "message/rfc822"
    assert len(attachment.data) > 2_000_000


def test_torture_mail_lists_its_parts() -> None:
    mail = parse(read("flanker/torture.eml"))
    assert mail.subject == "Multi-media mail demonstration"
    types = {attachment.content_type for attachment in mail.attachments}
    assert {"message/rfc822", "audio/basic", "image/pbm"} <= types
