"""Build TNEF (winmail.dat) streams as Outlook writes them, to feed the real decoder."""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LEVEL_ATTACHMENT = 0x02
ATT_ATTACH_REND_DATA = 0x9002  # starts each attachment
ATT_ATTACH_TITLE = 0x8010  # its file name
ATT_ATTACH_DATA = 0x800F  # its bytes
TYPE_BYTE = 0x0006
TYPE_STRING = 0x0001


def tnef_stream(files: list[tuple[str, bytes]]) -> bytes:
    """A TNEF stream carrying ``files`` (name, bytes) as attachments (MS-OXTNEF 2.1.3)."""
    stream = struct.pack("<IH", SIGNATURE, 0x0001)
    for name, data in files:
        stream += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_REND_DATA, TYPE_BYTE, bytes(14))
        stream += attribute(
            LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, TYPE_STRING, name.encode() + b"\x00"
        )
        stream += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_DATA, TYPE_BYTE, data)
    return stream


def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
    """One TNEF attribute: level, id (name and type), length, data, checksum."""
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)
