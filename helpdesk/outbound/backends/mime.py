"""The complete MIME message one recipient gets, the same for every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid

from helpdesk.outbound.backends.interface import OutgoingBatch, Recipient
from helpdesk.outbound.backends.substitution import substitute
from helpdesk.outbound.backends.validation import check_batch, check_recipient, parse_address

_SOFT_LIMIT = 78  # RFC 5322: lines SHOULD be no longer than 78 characters
_HARD_LIMIT = 998  # ... and MUST be no longer than 998


class MailPolicy(EmailPolicy):
    """The standard policy, except that ASCII headers are folded only at their spaces.

    The standard policy turns an ASCII header with a token longer than a line (a long
    List-Unsubscribe URL, a References chain) into RFC 2047 encoded words, which mail
    clients then fail to read as a URL or a Message-ID. A line may legally be 998
    characters long, so such a token is kept whole on a line of its own instead.
    """

    def _fold_ascii(self, name: str, value: object) -> str | None:
        text = str(value)
        if not text.isascii() or "\r" in text or "\n" in text:
            return None
        limit = self.max_line_length or _HARD_LIMIT
        lines: list[str] = []
        line = f"{name}:"
        for position, word in enumerate(text.split(" ")):
            if position and len(line) + 1 + len(word) > limit and line.strip():
                lines.append(line)
                line = ""
            line = f"{line} {word}"
        lines.append(line)
        if any(len(line) > _HARD_LIMIT for line in lines):
            return None
        return self.linesep.join(lines) + self.linesep

    def fold(self, name: str, value: object) -> str:
        """Fold a header for text output (see the class docstring)."""
        folded = self._fold_ascii(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: object) -> bytes:
        """Fold a header for bytes output (see the class docstring)."""
        folded = self._fold_ascii(name, value)
        if folded is not None:
            return folded.encode("ascii")
        return super().fold_binary(name, value)


# Bodies are encoded as quoted-printable or base64 (cte_type 7bit), so any relay carries
# them unchanged, with or without 8BITMIME.
FILE_POLICY = MailPolicy(cte_type="7bit", max_line_length=_SOFT_LIMIT, linesep="\n")
SMTP_POLICY = FILE_POLICY.clone(linesep="\r\n")


def _address_header(formatted: str) -> Address:
    name, address = parse_address(formatted)
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def render_for_recipient(batch: OutgoingBatch, recipient: Recipient) -> EmailMessage:
    """The complete message ``recipient`` gets from ``batch``; raises InvalidMail if malformed.

    Substitutions apply to subject, text and html. The body is text/plain, or
    text/plain then text/html as multipart/alternative, wrapped in multipart/mixed when
    there are attachments. Shared headers come first, the recipient's own override them;
    Bcc addresses are never written into the message.
    """
    check_batch(batch)
    check_recipient(batch, recipient)
    subs = recipient.substitutions
    message = EmailMessage(policy=FILE_POLICY)
    message["From"] = _address_header(batch.from_addr)
    message["To"] = [_address_header(a) for a in recipient.to]
    if recipient.cc:
        message["Cc"] = [_address_header(a) for a in recipient.cc]
    if batch.reply_to:
        message["Reply-To"] = _address_header(batch.reply_to)
    message["Subject"] = substitute(batch.subject, subs)
    headers = {name.lower(): (name, value) for name, value in batch.headers.items()}
    headers.update({name.lower(): (name, value) for name, value in recipient.headers.items()})
    if "date" not in headers:
        message["Date"] = format_datetime(datetime.now(UTC))
    if "message-id" not in headers:
        domain = parse_address(batch.from_addr)[1].rpartition("@")[2]
        message["Message-ID"] = make_msgid(domain=domain)
    for name, value in headers.values():
        message[name] = value
    text = substitute(batch.text, subs)
    html = substitute(batch.html, subs) if batch.html else None
    if text:
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
    else:
        message.set_content(html or "", subtype="html")
    for attachment in batch.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            bytes(attachment.data), maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def envelope_recipients(recipient: Recipient) -> list[str]:
    """The bare addresses a copy is delivered to (to, cc and bcc), each once, in order."""
    seen: dict[str, str] = {}
    for formatted in [*recipient.to, *recipient.cc, *recipient.bcc]:
        address = parse_address(formatted)[1]
        seen.setdefault(address.lower(), address)
    return list(seen.values())
