"""Bytes to text when a mail's declared charset is missing, wrong or made up."""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

# Labels seen in real mail that Python does not know, or knows only as a narrower
# charset than senders actually use (a "gb2312" mail is in practice GBK/GB18030).
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac-roman",
    "tis-620": "cp874",
}

# ISO-2022-JP mail from Japanese carriers routinely uses the vendor extensions.
_FALLBACK_CODECS = {
    "iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
}

# Codecs that exist in Python but are not character sets a mail can be written in.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "mbcs", "oem"}
)

_SURROGATES = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=256)
def codecs_for(charset: str | None) -> tuple[str, ...]:
    """The Python codecs to try, in order, for a declared charset (empty when unknown)."""
    if not charset:
        return ()
    label = charset.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return ()
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return ()
    return _FALLBACK_CODECS.get(info.name, (info.name,))


def decode_text(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode ``data`` as well as it can be; return the text and a defect note or None.

    The declared charset is tried first, then UTF-8, then Windows-1252 (what undeclared
    8-bit mail nearly always is). Nothing raises: the last resort replaces bad bytes.
    """
    candidates = codecs_for(charset)
    for codec in candidates:
        try:
            return _clean(data.decode(codec)), None
        except UnicodeError:
            continue
    if "utf-8" not in candidates:
        try:
            text = data.decode("utf-8")
        except UnicodeError:
            pass
        else:
            note = f"unknown charset {charset!r}" if charset and not candidates else None
            return _clean(text), note
    text, how = _best_effort(data, candidates[0] if candidates else None)
    if charset:
        return text, f"text is not valid {charset!r}; {how}"
    return text, f"undeclared 8-bit text; {how}"


def decode_header_bytes(data: bytes, hint: str | None = None) -> str:
    """Decode raw 8-bit header bytes: UTF-8 (RFC 6532), else the hinted charset, else cp1252."""
    try:
        return _clean(data.decode("utf-8"))
    except UnicodeError:
        pass
    for codec in codecs_for(hint):
        try:
            return _clean(data.decode(codec))
        except UnicodeError:
            continue
    return _best_effort(data, None)[0]


def _best_effort(data: bytes, declared: str | None) -> tuple[str, str]:
    """Text from bytes that no charset decodes cleanly, and how it was read."""
    lenient = data.decode("utf-8", "replace")
    broken = lenient.count("\ufffd")
    valid = len(lenient) - len(lenient.encode("ascii", "ignore")) - broken
    # UTF-8 with a few broken sequences (a name cut mid-character) is still UTF-8;
    # bytes that form no valid multi-byte sequence are a single-byte charset.
    if valid and broken <= valid:
        return _clean(lenient), "read as UTF-8, invalid bytes replaced"
    try:
        return _clean(data.decode("cp1252")), "read as cp1252"
    except UnicodeError:
        pass
    codec = declared or "cp1252"
    return _clean(data.decode(codec, "replace")), f"read as {codec}, invalid bytes replaced"


def _clean(text: str) -> str:
    """Drop what no database or UTF-8 sink accepts: NUL and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return _SURROGATES.sub("\ufffd", text)
