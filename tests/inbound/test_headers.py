"""Header values: encoded words, raw bytes, folding, message ids, List-Id, addresses."""

from __future__ import annotations

import pytest

from helpdesk.inbound.headers import (
    Address,
    address_of,
    addresses_of,
    decode_words,
    display_text,
    header_value,
    list_id,
    list_id_of,
    message_id_of,
    message_ids,
    parse_addresses,
    unfold,
)
from tests.inbound.conftest import build_mail, parse_mail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?w6lsw6h2ZQ==?=", "élève"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?=\t  =?iso-8859-1?q?=E9?=", "aé"),
        ("x =?utf-8?q?a?= y", "x a y"),
        ("=?utf-8?q?hello_world?=", "hello world"),
        ("=?utf-8*en?q?tagged?=", "tagged"),
        ("=?utf-8?b?w6k?=", "é"),
        ("=?x-bogus?q?caf=E9?=", "café"),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("C:\\user =?utf-8?q?x?=", "C:\\user x"),
    ],
    ids=[
        "plain",
        "q",
        "b",
        "adjacent",
        "mixed-charsets",
        "surrounded",
        "underscore",
        "language",
        "missing-padding",
        "unknown-charset",
        "unterminated",
        "backslash",
    ],
)
def test_decode_words(value: str, expected: str) -> None:
    assert decode_words(value) == expected


def test_a_character_split_across_two_words_is_joined() -> None:
    # "é" is C3 A9 in UTF-8; senders split words at byte boundaries.
    assert decode_words("=?utf-8?b?ww==?= =?utf-8?b?qQ==?=") == "é"
    assert decode_words("=?utf-8?q?=C3?= =?utf-8?q?=A9?=") == "é"


def test_unfold_joins_continuation_lines() -> None:
    assert unfold("one\r\n two\n\tthree") == "one two three"


def test_header_value_decodes_raw_bytes_with_the_hint() -> None:
    raw = "Caf\udce9"  # how the stdlib keeps the byte E9 of a raw 8-bit header
    assert header_value(raw, "iso-8859-1") == "Café"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b.example>", ["a@b.example"]),
        ("<a@b> <c@d>\r\n <a@b>", ["a@b", "c@d"]),
        ("<a@b> (Jane's message of Monday)", ["a@b"]),
        ("bare@id.example", ["bare@id.example"]),
        ("<>", []),
        ("<broken id@example.com>", []),
        ("nothing here", []),
    ],
)
def test_message_ids(value: str, expected: list[str]) -> None:
    assert message_ids(value) == expected


def test_message_ids_drop_absurdly_long_ids() -> None:
    assert message_ids("<" + "x" * 1000 + "@example.com>") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PyCon Info <Info.PyCon.Example>", "info.pycon.example"),
        ("<list.example.org>", "list.example.org"),
        ("list.example.org", "list.example.org"),
        ("just words", None),
        ("", None),
    ],
)
def test_list_id(value: str, expected: str | None) -> None:
    assert list_id(value) == expected


def test_parse_addresses_decodes_names_after_parsing() -> None:
    # The encoded comma must not split the mailbox in two.
    assert parse_addresses("=?utf-8?q?Doe=2C_John?= <j@x.example>, c@d.example") == [
        Address("Doe, John", "j@x.example"),
        Address("", "c@d.example"),
    ]


def test_parse_addresses_survives_broken_encoded_names() -> None:
    assert parse_addresses("=?utf-8?b?x?= <a@b.example>, =?utf-8?b?w6k=?= <c@d.example>") == [
        Address("", "a@b.example"),  # one base64 character carries no byte
        Address("é", "c@d.example"),
    ]


def test_parse_addresses_skips_items_without_an_address() -> None:
    assert parse_addresses("undisclosed-recipients:;") == []
    assert parse_addresses(None) == []


def test_parse_addresses_drops_a_name_that_repeats_the_address() -> None:
    assert parse_addresses('"a@b.example" <a@b.example>') == [Address("", "a@b.example")]


# -- whole-message helpers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=?utf-8?q?R=C3=BCckfrage?= zum  Vortrag", "Rückfrage zum Vortrag"),
        ("=?iso-8859-1?q?Gr=FC=DFe?=", "Grüße"),
        ("=?x-unknown-charset?q?abc?=", "abc"),
        ("=?utf-8?b?not base64?=", "=?utf-8?b?not base64?="),
        ("plain\r\n folded", "plain folded"),
    ],
)
def test_display_text_decodes_what_it_can_and_keeps_the_rest(value, text):
    assert display_text(value) == text


def test_raw_eight_bit_headers_are_read_as_utf8_or_windows_1252():
    utf8 = parse_mail("Subject: Grüße aus Berlin\r\n\r\nx".encode())
    latin = parse_mail("Subject: Grüße aus Berlin\r\n\r\nx".encode("cp1252"))
    assert display_text(utf8["Subject"]) == "Grüße aus Berlin"
    assert display_text(latin["Subject"]) == "Grüße aus Berlin"


def test_addresses_are_lower_cased_and_names_decoded():
    message = build_mail(
        {
            "From": "=?utf-8?q?J=C3=BCrgen?= <Juergen@Example.ORG>",
            "Cc": "a@example.org, B <b@example.org>, not an address",
        }
    )
    assert address_of(message, "From") == ("Jürgen", "juergen@example.org")
    assert address_of(message, "Reply-To") == ("", "")
    assert addresses_of(message, "Cc") == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("<abc@example.org>", "abc@example.org"),
        ("  <abc@example.org> (comment)", "abc@example.org"),
        ("abc@example.org", "abc@example.org"),
        ("", None),
        ("no id here", None),
    ],
)
def test_message_id_of_strips_angle_brackets(value, found):
    assert message_id_of(value) == found


def test_list_id_of_takes_the_identifier_in_angle_brackets():
    assert (
        list_id_of(build_mail({"List-Id": '"Program" <Program.PyCon.test>'}))
        == "program.pycon.test"
    )
    assert list_id_of(build_mail({"List-Id": "program.pycon.test"})) == "program.pycon.test"
    assert list_id_of(build_mail({"Subject": "x"})) is None
