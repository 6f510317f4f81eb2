"""Signed links in bulk mail: one-click unsubscribe, the preference page, list confirmation.

Each purpose has its own salt, so a token made for one can never be used for another. The
tokens carry a timestamp: an unsubscribe link works for a year after its mail was sent, a
preference link as long, a double opt-in confirmation for a week.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

UNSUBSCRIBE_MAX_AGE = timedelta(days=365)
PREFERENCES_MAX_AGE = timedelta(days=365)
CONFIRM_MAX_AGE = timedelta(days=7)


class InvalidToken(ValueError):
    """A token that was forged, altered, made for another purpose, or has expired."""


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What an unsubscribe token names: who, from which list, through which campaign."""

    subscriber_id: int
    list_id: int
    campaign_id: int | None
    delivery_id: int | None


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=16)
def _cached_serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # Bulk mail signs two tokens per recipient: build each serializer once per key.
    return URLSafeTimedSerializer(secret, salt=f"helpdesk.{purpose}")


def _load(purpose: str, token: str, max_age: timedelta) -> dict:
    try:
        data = _serializer(purpose).loads(token, max_age=int(max_age.total_seconds()))
    except BadData as exc:
        raise InvalidToken(str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidToken("unexpected token payload")
    return data


@lru_cache(maxsize=16)
def _signing_key(secret: str, purpose: str) -> bytes:
    return _cached_serializer(secret, purpose).make_signer().derive_key()


def _dumps(purpose: str, payload: dict) -> str:
    """What the serializer's ``dumps`` makes, without re-deriving the key for every token.

    Bulk mail signs two tokens per recipient. The format is itsdangerous' own (URL-safe
    base64 of compact JSON, timestamp, HMAC-SHA1 under the derived key), left
    uncompressed as it is for payloads this small, so ``loads`` reads it as any other.
    """
    key = _signing_key(current_app.config["SECRET_KEY"], purpose)
    value = base64_encode(json.dumps(payload, separators=(",", ":")).encode())
    value += b"." + base64_encode(int_to_bytes(int(time.time())))
    signature = base64_encode(hmac.new(key, value, hashlib.sha1).digest())
    return (value + b"." + signature).decode("ascii")


def unsubscribe_token(
    subscriber_id: int, list_id: int, campaign_id: int | None = None, delivery_id: int | None = None
) -> str:
    """The token of one delivery's unsubscribe link (``/u/TOKEN``)."""
    payload = {"s": subscriber_id, "l": list_id, "c": campaign_id, "d": delivery_id}
    return _dumps("unsubscribe", payload)


def read_unsubscribe_token(token: str) -> UnsubscribeClaim:
    data = _load("unsubscribe", token, UNSUBSCRIBE_MAX_AGE)
    try:
        return UnsubscribeClaim(
            subscriber_id=int(data["s"]),
            list_id=int(data["l"]),
            campaign_id=None if data.get("c") is None else int(data["c"]),
            delivery_id=None if data.get("d") is None else int(data["d"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("unexpected token payload") from None


def preferences_token(subscriber_id: int) -> str:
    """The token of a subscriber's preference page (``/preferences/TOKEN``)."""
    return _dumps("preferences", {"s": subscriber_id})


def read_preferences_token(token: str) -> int:
    data = _load("preferences", token, PREFERENCES_MAX_AGE)
    try:
        return int(data["s"])
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("unexpected token payload") from None


def confirm_token(subscription_id: int) -> str:
    """The token of a double opt-in confirmation link (``/subscribe/confirm/TOKEN``)."""
    return _serializer("confirm").dumps({"sub": subscription_id})


def read_confirm_token(token: str) -> int:
    data = _load("confirm", token, CONFIRM_MAX_AGE)
    try:
        return int(data["sub"])
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("unexpected token payload") from None
