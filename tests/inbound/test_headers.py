"""Reading header values that may be encoded badly or not at all."""

from __future__ import annotations

import pytest

from helpdesk.inbound.headers import address_of, addresses_of, decode_text, list_id, message_id_of
from tests.inbound.conftest import build_mail, parse_mail


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
def test_decode_text_decodes_what_it_can_and_keeps_the_rest(value, text):
    assert decode_text(value) == text


def test_raw_eight_bit_headers_are_read_as_utf8_or_windows_1252():
    utf8 = parse_mail("Subject: Grüße aus Berlin\r\n\r\nx".encode())
    latin = parse_mail("Subject: Grüße aus Berlin\r\n\r\nx".encode("cp1252"))
    assert decode_text(utf8["Subject"]) == "Grüße aus Berlin"
    assert decode_text(latin["Subject"]) == "Grüße aus Berlin"


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


def test_list_id_takes_the_identifier_in_angle_brackets():
    assert (
        list_id(build_mail({"List-Id": '"Program" <Program.PyCon.test>'})) == "program.pycon.test"
    )
    assert list_id(build_mail({"List-Id": "program.pycon.test"})) == "program.pycon.test"
    assert list_id(build_mail({"Subject": "x"})) is None
