"""Unsubscribing from bulk mail: RFC 8058 one-click links, the mailto: variant, headers.

Every bulk mail names a signed token (helpdesk.outbound.tokens) for its delivery: the
subscriber, the list and the campaign. ``https://BASE/u/TOKEN`` takes a POST with body
``List-Unsubscribe=One-Click`` (what Gmail and Yahoo send) and unsubscribes at once; a GET
only shows a button, because link scanners fetch every link in a mail.

The ``mailto:`` variant: when ``HELPDESK_UNSUBSCRIBE_ADDRESS`` is set, the header also
offers ``mailto:ADDRESS?subject=unsubscribe%20TOKEN``. The token travels in the subject
rather than in a ``local+TOKEN`` address because a token is longer than the 64 characters
a local part may have; :func:`unsubscribe_by_mail` still accepts both forms, the subject
and a ``+TOKEN`` suffix, from whatever mail reaches that mailbox.
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
    """Handle a mail sent to the ``mailto:`` unsubscribe address.

    The token is taken from a ``+TOKEN`` suffix of the recipient address or from the
    subject (``unsubscribe TOKEN``). None when the mail is not for the unsubscribe address
    or carries no valid token: nothing changes then.
    """
    configured = current_app.config.get("HELPDESK_UNSUBSCRIBE_ADDRESS")
    if not configured:
        return None
    local, _, domain = addresses.normalize(configured).partition("@")
    candidates: list[str] = []
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
    else:
        return None
    for candidate in candidates:
        try:
            return unsubscribe_with_token(candidate, how="mailto")
        except InvalidToken:
            continue
    log.info("unsubscribe mail without a valid token")
    return None


def list_unsubscribe_headers(
    subscriber_id: int, list_id: int, campaign_id: int | None, delivery_id: int | None
) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` of one delivery (RFC 2369, 8058)."""
    token = unsubscribe_token(subscriber_id, list_id, campaign_id, delivery_id)
    values = [f"<{unsubscribe_url(token)}>"]
    address = current_app.config.get("HELPDESK_UNSUBSCRIBE_ADDRESS")
    if address:
        values.append(f"<mailto:{address}?subject={quote('unsubscribe ' + token)}>")
    return {"List-Unsubscribe": ", ".join(values), "List-Unsubscribe-Post": ONE_CLICK_BODY}


def unsubscribe_url(token: str) -> str:
    """The public one-click URL of a token."""
    return f"{current_app.config['HELPDESK_BASE_URL']}/u/{token}"


def preferences_url(subscriber_id: int) -> str:
    """The public preference page of a subscriber (for every mail's footer)."""
    return (
        f"{current_app.config['HELPDESK_BASE_URL']}/preferences/{preferences_token(subscriber_id)}"
    )
