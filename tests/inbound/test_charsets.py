"""Decoding bytes whose charset is missing, wrong, an alias or made up."""

from __future__ import annotations

import pytest

from helpdesk.inbound.charsets import codecs_for, decode_header_bytes, decode_text


@pytest.mark.parametrize(
    ("label", "first"),
    [
        ("gb2312", "gb18030"),
        ("GB2312", "gb18030"),
        ("ks_c_5601-1987", "cp949"),
        ("Shift_JIS", "cp932"),
        ("unicode-1-1-utf-7", "utf-7"),
        ("uft-8", "utf-8"),
        ('"windows-1251"', "cp1251"),
        ("iso-2022-jp", "iso2022_jp"),
    ],
)
def test_codecs_for_maps_mail_labels_to_python_codecs(label: str, first: str) -> None:
    assert codecs_for(label)[0] == first


@pytest.mark.parametrize("label", [None, "", "x-unknown", "base64", "rot13", "idna", "undefined"])
def test_codecs_for_rejects_unknown_and_non_text_codecs(label: str | None) -> None:
    assert codecs_for(label) == ()


def test_gb2312_is_read_as_gb18030() -> None:
    # 喆 is in GBK/GB18030 but not in GB2312, and such mail is labelled gb2312 anyway.
    assert decode_text("喆".encode("gbk"), "gb2312") == ("喆", None)


def test_iso_2022_jp_falls_back_to_the_vendor_extensions() -> None:
    data = "ｱｲｳ".encode("iso2022_jp_ext")
    assert decode_text(data, "ISO-2022-JP") == ("ｱｲｳ", None)


def test_declared_charset_is_used_when_it_fits() -> None:
    assert decode_text("Привет".encode("koi8-r"), "koi8-r") == ("Привет", None)


def test_undeclared_utf8_needs_no_note() -> None:
    assert decode_text("naïve".encode(), None) == ("naïve", None)


def test_undeclared_8bit_text_is_read_as_cp1252() -> None:
    text, note = decode_text(b"caf\xe9 cr\xe8me \x80", None)
    assert text == "café crème €"
    assert note is not None
    assert "cp1252" in note


def test_unknown_charset_falls_back_and_says_so() -> None:
    text, note = decode_text(b"plain", "x-bogus")
    assert text == "plain"
    assert note == "unknown charset 'x-bogus'"


def test_broken_utf8_keeps_the_valid_characters() -> None:
    text, note = decode_text("Cyklozaměstnavatel".encode() + b"\xff end", "utf-8")
    assert text == "Cyklozaměstnavatel\ufffd end"
    assert note is not None
    assert "replaced" in note


def test_bytes_invalid_in_the_declared_charset_are_read_as_cp1252() -> None:
    # RFC 2231 name with a stray 8-bit byte in an ISO-2022-JP (7-bit) value.
    assert decode_text(b"Dij\x8aat", "iso-2022-jp")[0] == "DijŠat"


def test_decoded_text_has_no_nul_or_lone_surrogates() -> None:
    text, _note = decode_text(b"+2D3-a\x00b", "utf-7")
    assert "\x00" not in text
    text.encode("utf-8")


def test_raw_header_bytes_prefer_utf8_then_the_hint() -> None:
    assert decode_header_bytes("Zoë".encode()) == "Zoë"
    assert decode_header_bytes("Зоя".encode("koi8-r"), "koi8-r") == "Зоя"
    assert decode_header_bytes(b"Ren\xe9") == "René"


def test_raw_header_bytes_cut_mid_character_stay_utf8() -> None:
    assert decode_header_bytes("Картинка чт".encode() + b"\xd0") == "Картинка чт\ufffd"
