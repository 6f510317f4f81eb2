"""Attachments: payloads, nested mail, inline images, TNEF; every leaf but the body."""

from __future__ import annotations

import binascii
import email
import hashlib

import pytest

from helpdesk.inbound.attachments import ParsedAttachment, unpack_tnef
from helpdesk.inbound.parse import parse
from tests.support.corpus import read
from tests.support.mime import mail, multipart, part
from tests.support.tnef import tnef_stream


def attachments_of(entity: bytes) -> list[ParsedAttachment]:
    """The attachments parse() finds in a mail whose body is a short text."""
    return parse(mail(multipart("mixed", part("text/plain", "body"), entity))).attachments


# Payloads.


def test_unnamed_parts_in_mail_get_derived_names() -> None:
    found = attachments_of(part("application/pdf", "%PDF-1.4", "Content-Disposition: attachment"))
    assert [attachment.filename for attachment in found] == ["attachment.pdf"]


def test_base64_payload_is_decoded_and_hashed() -> None:
    data = bytes(range(256)) * 4
    encoded = binascii.b2a_base64(data).decode()
    found = attachments_of(
        part(
            "application/octet-stream",
            encoded,
            "Content-Transfer-Encoding: base64",
            'Content-Disposition: attachment; filename="blob.bin"',
        )
    )
    assert found[0].data == data
    assert found[0].sha256 == hashlib.sha256(data).hexdigest()
    assert found[0].size == 1024


def test_uuencoded_payload_is_decoded() -> None:
    data = b"uuencoded attachment bytes\x00\xff" * 3
    lines = [binascii.b2a_uu(data[i : i + 45]).decode() for i in range(0, len(data), 45)]
    body = "begin 644 old.doc\n" + "".join(lines) + "`\nend\n"
    found = attachments_of(
        part(
            'application/msword; name="old.doc"',
            body,
            "Content-Transfer-Encoding: x-uuencode",
        )
    )
    assert found[0].data == data


@pytest.mark.parametrize("cte", ["Base64 ", "base64;", "BASE64"])
def test_misspelled_base64_is_still_decoded(cte: str) -> None:
    found = attachments_of(
        part(
            'application/pdf; name="a.pdf"',
            binascii.b2a_base64(b"%PDF-1.7 data").decode(),
            f"Content-Transfer-Encoding: {cte}",
        )
    )
    assert found[0].data == b"%PDF-1.7 data"


def test_every_leaf_that_is_not_the_body_is_an_attachment() -> None:
    mail_ = parse(read("mail-parser/mail_test_7"))
    assert mail_.text.startswith("Ciao sere")
    assert [attachment.filename for attachment in mail_.attachments][:4] == [
        "image001.jpg",
        "att24916.htm",
        "image002.jpg",
        "att09558.htm",
    ]


# Nested mail.


def test_attached_message_becomes_an_eml_file() -> None:
    mail_ = parse(read("cpython-email/msg_11.txt"))
    [attachment] = mail_.attachments
    assert attachment.filename == "An enclosed message.eml"
    assert attachment.content_type == "message/rfc822"
    inner = email.message_from_bytes(attachment.data)
    assert inner["Subject"] == "An enclosed message"
    assert inner.get_payload() == "Here is the body of the message.\r\n"


def test_attached_message_keeps_its_header_folding_with_crlf_lines() -> None:
    inner = b"Subject: a long\n subject line\nX-Custom: spaced   value\n\nbody\nmore\n"
    found = attachments_of(part("message/rfc822", inner))
    assert found[0].data == (
        b"Subject: a long\r\n subject line\r\nX-Custom: spaced   value\r\n\r\nbody\r\nmore\r\n"
    )


def test_attached_message_name_ends_in_eml() -> None:
    inner = b"Subject: Quarterly report\r\n\r\nbody\r\n"
    named = attachments_of(
        part("message/rfc822", inner, 'Content-Disposition: attachment; filename="forwarded"')
    )
    unnamed = attachments_of(part("message/rfc822", b"\r\nno headers\r\n"))
    assert named[0].filename == "forwarded.eml"
    assert unnamed[0].filename == "attachment.eml"


def test_delivery_status_keeps_every_field_block() -> None:
    mail_ = parse(read("flanker/bounce/mailbox-full.eml"))
    status = next(a for a in mail_.attachments if a.content_type == "message/delivery-status")
    assert b"reporting-mta:" in status.data.lower()
    # The per-message and per-recipient field blocks stay separated by a blank line.
    first_block, _, rest = status.data.lower().partition(b"\r\n\r\n")
    assert b"reporting-mta:" in first_block
    assert b"final-recipient:" in rest


# Inline images.


def test_inline_images_keep_their_content_id() -> None:
    mail_ = parse(read("mail-parser/mail_test_2"))
    inline = {a.content_id: a for a in mail_.attachments if a.inline}
    assert set(inline) == {"intestazione.jpg", "logo.jpg"}
    assert inline["logo.jpg"].filename == "logometeo.jpg"
    assert inline["logo.jpg"].data.startswith(b"\xff\xd8")  # JPEG magic
    assert mail_.html is not None
    assert "cid:logo.jpg" in mail_.html


def test_regular_attachments_are_not_inline() -> None:
    mail_ = parse(read("mail-parser/mail_test_2"))
    pdf = next(a for a in mail_.attachments if a.filename == "Bollettino.pdf")
    assert pdf.inline is False
    assert pdf.content_id is None


# TNEF (winmail.dat).


def test_winmail_dat_is_unpacked_into_its_files() -> None:
    stream = tnef_stream([("agenda.pdf", b"%PDF-1.4 agenda"), ("notes.txt", b"room 2")])
    found = attachments_of(
        part(
            'application/ms-tnef; name="winmail.dat"',
            binascii.b2a_base64(stream).decode(),
            "Content-Transfer-Encoding: base64",
        )
    )
    assert [(a.filename, a.content_type, a.data) for a in found] == [
        ("agenda.pdf", "application/pdf", b"%PDF-1.4 agenda"),
        ("notes.txt", "text/plain", b"room 2"),
    ]


@pytest.mark.parametrize(
    "blob",
    [b"not tnef at all", tnef_stream([("cut.txt", b"abcdefgh")])[:30], tnef_stream([])],
    ids=["garbage", "truncated", "no-files"],
)
def test_winmail_dat_that_cannot_be_unpacked_is_kept(blob: bytes) -> None:
    assert unpack_tnef(blob) == []
    found = attachments_of(
        part(
            "application/ms-tnef",
            binascii.b2a_base64(blob).decode(),
            "Content-Transfer-Encoding: base64",
            'Content-Disposition: attachment; filename="winmail.dat"',
        )
    )
    assert [(a.filename, a.data) for a in found] == [("winmail.dat", blob)]


def test_corpus_winmail_dat_without_files_is_kept() -> None:
    mail_ = parse(read("sisimai-set-of-emails/maildir/bsd/lhost-amazonworkmail-01.eml"))
    tnef = [a for a in mail_.attachments if a.content_type == "application/ms-tnef"]
    assert [a.filename for a in tnef] == ["winmail.dat"]
    assert tnef[0].data.startswith(b"\x78\x9f\x3e\x22")  # the TNEF signature
