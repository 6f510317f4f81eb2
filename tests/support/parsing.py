"""Running parse() in tests where rejecting input as not mail is an acceptable outcome."""

from __future__ import annotations

from helpdesk.inbound.parse import InboundMail, NotMail, parse


def parse_or_reason(raw: bytes) -> InboundMail | str:
    """The parsed mail, or NotMail's reason; any other exception propagates."""
    try:
        return parse(raw)
    except NotMail as error:
        return error.reason
