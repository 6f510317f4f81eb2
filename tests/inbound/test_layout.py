"""Which MIME part is the body, and which are attachments."""

from __future__ import annotations

import email
from email.message import Message

from helpdesk.inbound.layout import is_attachment, layout
from tests.support.mime import mail, multipart, part


def tree(raw: bytes) -> Message:
    """The stdlib tree for raw bytes (what mail-parser hands over)."""
    return email.message_from_bytes(raw)


def payload(message_part: Message | None) -> bytes | None:
    """A part's decoded payload, or None."""
    return None if message_part is None else message_part.get_payload(decode=True)


def test_single_text_part_is_the_body() -> None:
    found = layout(tree(mail(part("text/plain", "hello"))))
    assert payload(found.plain) == b"hello"
    assert found.html is None
    assert found.leaves == []


def test_alternative_gives_plain_and_html() -> None:
    raw = mail(multipart("alternative", part("text/plain", "plain"), part("text/html", "<p>rich")))
    found = layout(tree(raw))
    assert payload(found.plain) == b"plain"
    assert payload(found.html) == b"<p>rich"
    assert found.leaves == []


def test_related_html_keeps_its_images_as_leaves() -> None:
    related = multipart(
        "related",
        part("text/html", '<img src="cid:logo">'),
        part("image/png", "PNG", "Content-ID: <logo>"),
    )
    found = layout(tree(mail(multipart("alternative", part("text/plain", "p"), related))))
    assert payload(found.plain) == b"p"
    assert payload(found.html) == b'<img src="cid:logo">'
    assert [leaf.get_content_type() for leaf in found.leaves] == ["image/png"]


def test_related_root_can_be_named_by_start() -> None:
    related = multipart(
        "related",
        part("image/png", "PNG", "Content-ID: <logo>"),
        part("text/html", "<p>root", "Content-ID: <root@x>"),
        extra='; start="<root@x>"',
    )
    found = layout(tree(mail(related)))
    assert payload(found.html) == b"<p>root"


def test_mixed_takes_the_first_body_and_lists_the_rest() -> None:
    raw = mail(
        multipart(
            "mixed",
            multipart("alternative", part("text/plain", "body"), part("text/html", "<b>body")),
            part("application/pdf", "%PDF", 'Content-Disposition: attachment; filename="a.pdf"'),
            part("text/plain", "list footer"),
        )
    )
    found = layout(tree(raw))
    assert payload(found.plain) == b"body"
    assert payload(found.html) == b"<b>body"
    assert [leaf.get_content_type() for leaf in found.leaves] == ["application/pdf", "text/plain"]


def test_text_marked_as_an_attachment_is_not_the_body() -> None:
    raw = mail(
        multipart(
            "mixed",
            part("text/plain", "notes", 'Content-Disposition: attachment; filename="notes.txt"'),
            part("text/plain", "the body"),
        )
    )
    found = layout(tree(raw))
    assert payload(found.plain) == b"the body"
    assert len(found.leaves) == 1


def test_attached_messages_are_single_leaves_never_bodies() -> None:
    inner = b"Subject: inner\r\n\r\ninner text\r\n"
    raw = mail(multipart("mixed", part("message/rfc822", inner)))
    found = layout(tree(raw))
    assert found.plain is None
    assert [leaf.get_content_type() for leaf in found.leaves] == ["message/rfc822"]


def test_signed_mail_body_is_the_signed_content() -> None:
    raw = mail(
        multipart(
            "signed",
            part("text/plain", "signed text"),
            part("application/pgp-signature", "-----BEGIN PGP SIGNATURE-----"),
        )
    )
    found = layout(tree(raw))
    assert payload(found.plain) == b"signed text"
    assert [leaf.get_content_type() for leaf in found.leaves] == ["application/pgp-signature"]


def test_multipart_without_boundary_is_shown_as_text() -> None:
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\njust text\r\n"
    found = layout(tree(raw))
    assert payload(found.plain) == b"just text\r\n"


def test_headerless_parts_are_still_found() -> None:
    # A part with no header lines at all is a falsy Message; it is still a text body.
    raw = b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    raw += b"--b\r\n\r\nbare part\r\n--b--\r\n"
    found = layout(tree(raw))
    assert payload(found.plain) == b"bare part"


def test_is_attachment_looks_at_disposition_and_names() -> None:
    assert is_attachment(tree(part("text/plain", "x", "Content-Disposition: attachment")))
    assert is_attachment(tree(part('image/png; name="a.png"', "x")))
    assert is_attachment(tree(part("text/plain", "x", 'Content-Disposition: inline; filename="a"')))
    assert not is_attachment(tree(part("text/plain", "x", "Content-Disposition: inline")))
