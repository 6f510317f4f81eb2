"""Each line rule used to find quoted history and signatures, on its own."""

from __future__ import annotations

import pytest

from helpdesk.inbound import quote_rules as rules


@pytest.mark.parametrize(
    ("line", "expected"),
    [("> quoted", True), ("   >> nested", True), (">", True), ("not > quoted", False), ("", False)],
)
def test_is_quoted(line: str, expected: bool) -> None:
    assert rules.is_quoted(line) is expected


@pytest.mark.parametrize(("line", "expected"), [("", True), (" \t ", True), (" x ", False)])
def test_is_blank(line: str, expected: bool) -> None:
    assert rules.is_blank(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-----Original Message-----", True),
        ("----- Original Message -----", True),
        ("-----Ursprüngliche Nachricht-----", True),
        ("-------- Message d'origine --------", True),
        ("-----Исходное сообщение-----", True),
        ("The original message was lost", False),
        ("---------- Forwarded message ---------", False),
    ],
)
def test_is_original_message(line: str, expected: bool) -> None:
    assert rules.is_original_message(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("---------- Forwarded message ---------", True),
        ("-------- Weitergeleitete Nachricht --------", True),
        ("Begin forwarded message:", True),
        ("-----Original Message-----", False),
        ("I forwarded the message", False),
    ],
)
def test_is_forward_marker(line: str, expected: bool) -> None:
    assert rules.is_forward_marker(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("________________________________", True),
        (" ------------------------------", True),
        ("==========", True),
        ("-----", False),
        ("--- a ---", False),
    ],
)
def test_is_rule(line: str, expected: bool) -> None:
    assert rules.is_rule(line) is expected


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("From: Bob <bob@example.com>", "from"),
        ("*From:* Kim via Site [mailto:noreply@site.com]", "from"),
        ("Von: Anna", "from"),
        ("От: Alexander L", "from"),
        ("Sent: Friday, 23 March 2012 5:08 p.m.", "date"),
        ("Date: Thu, 26 Jun 2014 13:53:45 +0400", "date"),
        ("Envoyé le : lundi 3 mars", "date"),
        ("To: John", "to"),
        ("Кому: Alex", "to"),
        ("Subject: hello", "subject"),
        ("Betreff: Hallo", "subject"),
        ("Cc: jane@bar.io", "cc"),
        ("Re: not a field", None),
        ("To do: buy milk", None),
        ("10:30 meeting", None),
        ("plain text", None),
    ],
)
def test_header_field(line: str, kind: str | None) -> None:
    assert rules.header_field(line) == kind


def test_is_header_block_needs_from_and_two_more_fields() -> None:
    block = ["From: Bob", "Sent: Monday", "To: Alice", "Subject: Hi", "", "body"]
    assert rules.is_header_block(block, 0)
    assert not rules.is_header_block(["From: Bob", "To: Alice", "", "body"], 0)
    assert not rules.is_header_block(["Date: x", "To: y", "Subject: z"], 0)


def test_is_header_block_tolerates_one_wrapped_line() -> None:
    block = ["From: Foo [mailto:foo@bar.com]", "On Behalf Of baz@bar.com", "Sent: x", "To: y"]
    assert rules.is_header_block(block, 0)
    broken = ["From: Foo", "one line", "another line", "Sent: x", "To: y"]
    assert not rules.is_header_block(broken, 0)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:", True),
        ("<notifications@github.com>wrote:", True),
        ("Le 26 juin 2014 à 14:41, Alexander a écrit :", True),
        ("Am 26.06.2014 um 14:41 schrieb Alexander <a@example.com>:", True),
        ("Op 26 jun. 2014 om 14:41 schreef Alexander:", True),
        ("Am Ende schrieb er nichts.", False),
        ('02.04.2012 14:20 пользователь "bob@example.org" <bob@example.org> написал:', True),
        ("Bob wrote", False),
        ("On your remote host you can run:", False),
    ],
)
def test_is_reply_attribution(window: str, expected: bool) -> None:
    assert rules.is_reply_attribution(window) is expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ('26.06.2014, 14:41, "Alexander L" <abc@example.com>:', True),
        ("Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:", True),
        ("Here is what I had in mind:", False),
        ("Meeting at 10:30", False),
    ],
)
def test_is_dated_attribution(window: str, expected: bool) -> None:
    assert rules.is_dated_attribution(window) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("On Dec 16, 2011, at 12:47 PM, Corey Donohoe", True),
        ("<reply@reply.github.com>", True),
        ('02.04.2012 14:20 пользователь "bob@example.org" <', True),
        ("Hello", False),
        ("Hi,", False),
        ("", False),
    ],
)
def test_continues_attribution(line: str, expected: bool) -> None:
    assert rules.continues_attribution(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"), [("-- ", True), ("--", True), ("-- Tim", False), ("text -- more", False)]
)
def test_is_signature_delimiter(line: str, expected: bool) -> None:
    assert rules.is_signature_delimiter(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-- ", True),
        ("-Abhishek Kona", True),
        ("-- Tim", True),
        ("_______________________________________________", True),
        ("Sent from my iPhone", True),
        ("Sent from my Verizon Wireless BlackBerry", True),
        ("Sent with Sparrow (http://www.sparrowmailapp.com/?sig)", True),
        ("Get Outlook for Android", True),
        ("Sent from my desk, is much easier then my mobile phone.", False),
        ("Sent from a magnificent torch of pixels", False),
        ("- a bullet point", False),
        ("-1 for this idea", False),
        ("Regular text", False),
    ],
)
def test_is_signature_start(line: str, expected: bool) -> None:
    assert rules.is_signature_start(line) is expected
