"""Build raw MIME bytes for tests, header by header, exactly as written."""

from __future__ import annotations

import itertools

_boundaries = itertools.count(1)


def part(content_type: str, body: bytes | str = b"", *headers: str) -> bytes:
    """One MIME entity: Content-Type, extra header lines, blank line, body."""
    head = [f"Content-Type: {content_type}", *headers]
    payload = body.encode() if isinstance(body, str) else body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def multipart(subtype: str, *parts: bytes, extra: str = "") -> bytes:
    """A multipart entity holding ``parts`` (each made by part() or multipart())."""
    boundary = f"==boundary-{next(_boundaries)}=="
    lines = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}'.encode(), b""]
    for child in parts:
        lines += [f"--{boundary}".encode(), child]
    lines.append(f"--{boundary}--".encode())
    return b"\r\n".join(lines) + b"\r\n"


def mail(entity: bytes, *headers: str) -> bytes:
    """A whole mail: top-level headers followed by an entity from part()/multipart()."""
    head = ["From: Sender <sender@example.com>", "To: info@pycon.example", *headers]
    return ("\r\n".join(head) + "\r\n").encode() + entity
