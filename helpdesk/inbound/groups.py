"""Google Groups: who really wrote a mail that a Group rewrote, and the Group's footer.

When the author's domain publishes a strict DMARC policy, a Group rewrites the sender as
``"'Jane Doe' via Program" <program@pycon.de>`` and keeps the author in
``X-Original-Sender`` (and ``X-Original-From`` / ``Reply-To``). Anyone can write those
headers, so they are believed only when a DKIM signature of googlegroups.com or of the
Group's own domain passes, covers them and the List-Id, and that List-Id is one of our
Groups. Otherwise the claim is returned as unverified: shown, never used as identity.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr
from html import unescape
from html.parser import HTMLParser

from helpdesk.addresses import is_valid
from helpdesk.inbound.dkim import DkimVerifier, SignatureResult
from helpdesk.inbound.headers import address_of, display_text, list_id_of

log = logging.getLogger(__name__)

GOOGLE_GROUPS_DOMAIN = "googlegroups.com"
# Where a Group puts the author, most authoritative first.
CLAIM_HEADERS = ("X-Original-Sender", "X-Original-From", "Reply-To")
# A Group's footer is a few lines; anything longer after the phrase is real content.
MAX_FOOTER_CHARS = 2000
MAX_FOOTER_LINES = 10

_VIA = re.compile(r"^\s*['\"]?(?P<name>.*?)['\"]?\s+via\s+(?P<group>.+?)\s*$", re.IGNORECASE)
_FOOTER_LEAD = re.compile(
    r"You received this message because you are subscribed to the Google Groups"
    r"|Sie (?:haben|erhalten) diese Nachricht(?: erhalten)?, weil Sie"
    r"|Vous recevez ce message,? car vous êtes abonné"
    r"|Recibiste este mensaje porque estás suscrito"
    r"|Hai ricevuto questo messaggio perché sei iscritto"
    r"|Je ontvangt dit bericht omdat je bent geabonneerd",
    re.IGNORECASE,
)
_FOOTER_MARK = re.compile(r"\+unsubscribe@|groups\.google\.com/", re.IGNORECASE)
_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr", "param"}
)


@dataclass
class SenderIdentity:
    """Who sent a mail, and whether that may be used as their identity."""

    address: str
    name: str
    # True when ``address`` may identify the sender: the From of a mail that no Group
    # rewrote, or a Group rewrite proven by DKIM. False: ``address`` is the Group's own
    # and the author's claim below is unproven.
    verified: bool
    via_group: str | None  # the Group's address when the mail came through one of ours
    claimed_address: str | None
    claimed_name: str | None
    reason: str


@dataclass(frozen=True)
class _Claim:
    address: str
    name: str
    header: str


# -- the sender -------------------------------------------------------------------------


def group_claims(message: Message) -> list[_Claim]:
    """Every author claim a Group rewrite left, in order of authority."""
    claims = []
    for header in CLAIM_HEADERS:
        values = message.get_all(header, [])
        if len(values) != 1:
            continue
        name, address = parseaddr(str(values[0]))
        address = address.strip().lower()
        if is_valid(address):
            claims.append(_Claim(address, display_text(name), header.lower()))
    return claims


def is_group_rewrite(message: Message, claims: list[_Claim]) -> bool:
    """Whether From was rewritten: a "Name via Group" sender or an original sender that
    differs from From."""
    name, address = address_of(message, "From")
    if _VIA.match(name):
        return True
    return any(c.address != address for c in claims if c.header != "reply-to")


def identify_sender(
    raw: bytes, message: Message, groups: Mapping[str, str], verifier: DkimVerifier
) -> SenderIdentity:
    """The sender of ``message``, unwrapping a Google Group rewrite only when DKIM proves it.

    ``groups`` maps the List-Id of each of our Groups to the Group's address; DKIM is
    checked only when a rewrite is present.
    """
    name, address = address_of(message, "From")
    known = {key.strip().strip("<>").lower(): value.lower() for key, value in groups.items()}
    group_id = list_id_of(message)
    group_address = known.get(group_id) if group_id else None
    claims = group_claims(message)
    if not address:
        return SenderIdentity("", name, False, group_address, None, None, "no From address")
    if not is_group_rewrite(message, claims):
        return SenderIdentity(address, name, True, group_address, None, None, "no group rewrite")
    # A Reply-To pointing back at the Group says nothing about the author.
    claims = [c for c in claims if c.address != address]
    claim = claims[0] if claims else None
    display = _via_name(name)

    def unverified(reason: str) -> SenderIdentity:
        """The Group as sender, with the author's claim kept aside, unproven."""
        log.info("group rewrite not trusted (%s): %s", reason, message.get("Message-ID"))
        return SenderIdentity(
            address,
            name,
            False,
            group_address,
            claim.address if claim else None,
            (claim.name or display) if claim else None,
            reason,
        )

    if claim is None:
        return unverified("group rewrite without an original sender header")
    if group_address is None:
        return unverified(f"List-Id {group_id or '(none)'} is not one of our groups")
    for header in ("From", "List-Id"):
        if len(message.get_all(header, [])) != 1:
            return unverified(f"more than one {header} header")
    trusted_domains = {GOOGLE_GROUPS_DOMAIN, group_address.rpartition("@")[2]}
    passing = [r for r in verifier.check(raw) if r.passed and r.domain in trusted_domains]
    if not passing:
        return unverified(f"no passing DKIM signature of {' or '.join(sorted(trusted_domains))}")
    proven = _covered_claim(claims, passing)
    if proven is None:
        return unverified("the DKIM signature covers neither List-Id nor the original sender")
    claim, signature = proven
    return SenderIdentity(
        address=claim.address,
        name=_proven_name(claim, claims, signature) or display,
        verified=True,
        via_group=group_address,
        claimed_address=claim.address,
        claimed_name=claim.name or display,
        reason=f"group rewrite verified by DKIM (d={signature.domain})",
    )


def _covered_claim(
    claims: list[_Claim], signatures: list[SignatureResult]
) -> tuple[_Claim, SignatureResult] | None:
    # The claim must be one a trusted signature vouches for, together with the List-Id;
    # an unsigned header may have been added by anyone on the way.
    for claim in claims:
        for signature in signatures:
            if {"list-id", "from", claim.header} <= signature.signed_headers:
                return claim, signature
    return None


def _proven_name(claim: _Claim, claims: list[_Claim], signature: SignatureResult) -> str:
    if claim.name:
        return claim.name
    for other in claims:
        if other.address == claim.address and other.header in signature.signed_headers:
            return other.name
    return ""


def _via_name(display: str) -> str:
    match = _VIA.match(display)
    return match.group("name").strip() if match else ""


# -- the footer ---------------------------------------------------------------------------


def strip_group_footer(text: str) -> str:
    """Remove the footer a Google Group appends to the plain-text part ("You received
    this message because you are subscribed to the Google Groups ...")."""
    lines = text.splitlines(keepends=True)
    lead = None
    for index, line in enumerate(lines):
        if _FOOTER_LEAD.match(line.lstrip()):
            lead = index
    if lead is None or not _is_footer("".join(lines[lead:])):
        return text
    start = lead
    above = lead - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and lines[above].rstrip("\r\n") in ("--", "-- "):
        start = above
    kept = "".join(lines[:start]).rstrip()
    return kept + "\n" if kept and text.endswith("\n") else kept


def strip_group_footer_html(html: str) -> str:
    """Remove a Google Group's footer from an HTML part, closing the elements it was in."""
    leads = list(_FOOTER_LEAD.finditer(html))
    if not leads:
        return html
    position = leads[-1].start()
    if not _is_footer(_html_text(html[position:])):
        return html
    cut = _delimiter_before(html, position)
    return html[:cut] + _closing_tags(html[:cut])


def _is_footer(tail: str) -> bool:
    lines = [line for line in tail.splitlines() if line.strip()]
    return (
        len(tail) <= MAX_FOOTER_CHARS
        and len(lines) <= MAX_FOOTER_LINES
        and bool(_FOOTER_MARK.search(tail))
    )


def _html_text(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>", "\n", html)
    return unescape(re.sub(r"<[^>]*>", "", text))


def _delimiter_before(html: str, position: int) -> int:
    # Google writes "-- <br />" before the footer; cut there if only markup lies between.
    window_start = max(0, position - 300)
    window = html[window_start:position]
    for match in reversed(list(re.finditer(r"--", window))):
        between = window[match.end() :]
        if not _html_text(between).replace("\xa0", " ").strip():
            return window_start + match.start()
    return position


class _OpenElements(HTMLParser):
    """Tracks which elements are still open at the end of the fed HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a (non-void) element."""
        if tag not in _VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost open element of this name and everything inside it."""
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


def _closing_tags(html: str) -> str:
    parser = _OpenElements()
    parser.feed(html)
    return "".join(f"</{tag}>" for tag in reversed(parser.stack))
