"""Unsubscribing from bulk mail: RFC 8058 one-click links, the mailto: variant, headers.

Every bulk mail names a signed token (helpdesk.outbound.tokens) for its delivery: the
subscriber, the list and the campaign. ``https://BASE/u/TOKEN`` takes a POST with body
``List-Unsubscribe=One-Click`` (what Gmail and Yahoo send) and unsubscribes at once; a GET
only shows a button, because link scanners fetch every link in a mail.

The ``mailto:`` variant: the header also offers ``mailto:ADDRESS?subject=unsubscribe%20TOKEN``
with ADDRESS ``HELPDESK_UNSUBSCRIBE_ADDRESS`` or, unset, the mail's sender. The token
travels in the subject rather than in a ``local+TOKEN`` address because a token is longer
than the 64 characters a local part may have; :func:`unsubscribe_by_mail` accepts the
subject anywhere, and a ``+TOKEN`` suffix on the configured address.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import quote

from flask import current_app

from helpdesk import addresses
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models import Delivery, MailingList, Subscriber
from helpdesk.outbound import audience
from helpdesk.outbound.tokens import (
    InvalidToken,
    UnsubscribeClaim,
    preferences_token,
    read_unsubscribe_token,
    unsubscribe_token,
)

log = logging.getLogger(__name__)

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
# itsdangerous URL-safe tokens: base64url payload, timestamp and signature joined by dots.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")
# What a mail client puts in the subject when the mailto: link is followed.
_REQUEST = re.compile(rf"\bunsubscribe\s+({_TOKEN.pattern})", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """What a valid unsubscribe token points at, for the page that shows it."""

    claim: UnsubscribeClaim
    subscriber: Subscriber
    mailing_list: MailingList


@dataclass(frozen=True)
class Outcome:
    """What an unsubscribe did: ``changed`` is False when it had already happened."""

    target: Target
    changed: bool


def resolve(token: str) -> Target:
    """The subscriber and list a token names; InvalidToken if forged, altered or expired,
    or if they no longer exist."""
    claim = read_unsubscribe_token(token)
    subscriber = db.session.get(Subscriber, claim.subscriber_id)
    mailing_list = db.session.get(MailingList, claim.list_id)
    if subscriber is None or mailing_list is None:
        raise InvalidToken("the subscriber or list of this link no longer exists")
    return Target(claim, subscriber, mailing_list)


def source_for(claim: UnsubscribeClaim, how: str) -> str:
    """The ``unsubscribe_source`` recorded: how, and through which campaign."""
    return f"{how} campaign:{claim.campaign_id}" if claim.campaign_id is not None else how


def unsubscribe_with_token(token: str, how: str = "one-click") -> Outcome:
    """Unsubscribe the token's subscriber from the token's list (idempotent).

    The delivery the link came in, if any, records when its recipient unsubscribed, for
    the campaign's statistics.
    """
    target = resolve(token)
    changed = audience.unsubscribe(
        target.mailing_list.id, target.subscriber.id, source_for(target.claim, how)
    )
    if changed and target.claim.delivery_id is not None:
        delivery = db.session.get(Delivery, target.claim.delivery_id)
        if delivery is not None and delivery.subscriber_id == target.subscriber.id:
            delivery.unsubscribed_at = delivery.unsubscribed_at or utcnow()
    db.session.flush()
    if changed:
        log.info(
            "subscriber %s unsubscribed from list %s (%s)",
            target.subscriber.id,
            target.mailing_list.id,
            how,
        )
    return Outcome(target, changed)


def unsubscribe_by_mail(recipients: list[str], subject: str) -> Outcome | None:
    """Handle a mail sent through a ``mailto:`` unsubscribe link.

    Bulk mail offers ``mailto:ADDRESS?subject=unsubscribe%20TOKEN`` (see
    :func:`mailto_address`). A mail to HELPDESK_UNSUBSCRIBE_ADDRESS may carry the token in
    its subject or as a ``+TOKEN`` suffix of the address; a mail to any other address
    counts only with a subject of the form ``unsubscribe TOKEN`` (the campaign's sender is
    a committee address whose other mail must reach people). The signed token is what
    decides; None when no valid token is found: nothing changes then.
    """
    configured = current_app.config.get("HELPDESK_UNSUBSCRIBE_ADDRESS")
    candidates: list[str] = []
    if configured:
        local, _, domain = addresses.normalize(configured).partition("@")
        for recipient in recipients:
            key = addresses.normalize(addresses.parse_one(recipient)[1] or recipient)
            r_local, _, r_domain = key.partition("@")
            base, plus, _ = r_local.partition("+")
            if r_domain != domain or base != local:
                continue
            if plus:
                # The local part was lower-cased with the address; take the original case.
                original = (addresses.parse_one(recipient)[1] or recipient).partition("@")[0]
                candidates.append(original.partition("+")[2])
            candidates.extend(_TOKEN.findall(subject or ""))
            break
    candidates.extend(_REQUEST.findall(subject or ""))
    for candidate in dict.fromkeys(candidates):
        try:
            return unsubscribe_with_token(candidate, how="mailto")
        except InvalidToken:
            continue
    if candidates:
        log.info("unsubscribe mail without a valid token")
    return None


def mailto_address(from_addr: str) -> str:
    """Where the ``mailto:`` unsubscribe link of a bulk mail from ``from_addr`` points:
    HELPDESK_UNSUBSCRIBE_ADDRESS, or else the sender's own address."""
    configured = current_app.config.get("HELPDESK_UNSUBSCRIBE_ADDRESS")
    return configured or addresses.parse_one(from_addr)[1] or from_addr


def header_values(unsubscribe_link: str, token: str, mailto: str) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 2369, RFC 8058)."""
    mail = f"mailto:{mailto}?subject={quote('unsubscribe ' + token)}"
    return {
        "List-Unsubscribe": f"<{unsubscribe_link}>, <{mail}>",
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }


def list_unsubscribe_headers(
    subscriber_id: int,
    list_id: int,
    campaign_id: int | None,
    delivery_id: int | None,
    *,
    from_addr: str = "",
) -> dict[str, str]:
    """The unsubscribe headers of one delivery of a mail sent from ``from_addr``."""
    token = unsubscribe_token(subscriber_id, list_id, campaign_id, delivery_id)
    mailto = mailto_address(from_addr)
    if not mailto:
        return {
            "List-Unsubscribe": f"<{unsubscribe_url(token)}>",
            "List-Unsubscribe-Post": ONE_CLICK_BODY,
        }
    return header_values(unsubscribe_url(token), token, mailto)


def unsubscribe_url(token: str) -> str:
    """The public one-click URL of a token."""
    return f"{current_app.config['HELPDESK_BASE_URL']}/u/{token}"


def preferences_url(subscriber_id: int) -> str:
    """The public preference page of a subscriber (for every mail's footer)."""
    return (
        f"{current_app.config['HELPDESK_BASE_URL']}/preferences/{preferences_token(subscriber_id)}"
    )
