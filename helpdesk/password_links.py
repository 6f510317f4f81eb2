"""Invitations and password resets: signed, expiring links that set an agent's password.

A link names the agent and carries a fingerprint of their current password hash and
session version; setting a password changes both, so a link works once. Deactivating the
agent bumps the session version and so kills their links too. Each purpose has its own
salt and lifetime (HELPDESK_INVITATION_DAYS, HELPDESK_PASSWORD_RESET_MINUTES). The hash
itself is never put in a link: the fingerprint is an HMAC of it under the secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from helpdesk import addresses, agents, audit
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.threading import make_message_id
from helpdesk.models import MembershipRole, OutboundKind, User

log = logging.getLogger(__name__)

INVITATION = "invitation"
PASSWORD_RESET = "password-reset"  # noqa: S105 - a purpose, not a secret


class InvalidLink(ServiceError):
    """A link that was forged, has expired, was used already, or names nobody active."""

    def __init__(self) -> None:
        super().__init__("This link is not valid any more. Ask for a new one.")


def _fingerprint(user: User) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    material = f"{user.id}|{user.password_hash or ''}|{user.session_version}".encode()
    return hmac.new(key, b"helpdesk.password-link:" + material, hashlib.sha256).hexdigest()[:32]


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"helpdesk.{purpose}")


def _max_age(purpose: str) -> timedelta:
    if purpose == INVITATION:
        return timedelta(days=current_app.config["HELPDESK_INVITATION_DAYS"])
    return timedelta(minutes=current_app.config["HELPDESK_PASSWORD_RESET_MINUTES"])


def make_token(user: User, purpose: str) -> str:
    """A link token for ``user`` and ``purpose`` (INVITATION or PASSWORD_RESET)."""
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user)})


def user_for_token(token: str, purpose: str) -> User:
    """The active agent a valid, unused, unexpired token names; InvalidLink otherwise."""
    try:
        data = _serializer(purpose).loads(token, max_age=int(_max_age(purpose).total_seconds()))
    except BadData:
        raise InvalidLink() from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise InvalidLink()
    user = db.session.get(User, data["u"])
    if user is None or not user.active:
        raise InvalidLink()
    if not hmac.compare_digest(str(data.get("f", "")), _fingerprint(user)):
        raise InvalidLink()
    if purpose == INVITATION and user.password_hash is not None:
        raise InvalidLink()
    return user


def link_for(user: User, purpose: str) -> str:
    """The full URL of the link."""
    base = current_app.config["HELPDESK_BASE_URL"]
    path = "invitation" if purpose == INVITATION else "password/reset"
    return f"{base}/{path}/{make_token(user, purpose)}"


# -- invitations -------------------------------------------------------------------------


def invite(
    email: str,
    name: str,
    *,
    admin: bool = False,
    committees: list[tuple[str, MembershipRole | str]] | tuple = (),
    actor_id: int | None = None,
) -> User:
    """Create an agent without a password and mail them a link to choose one."""
    user = agents.create_agent(
        email,
        name or email,
        admin=admin,
        committees=[(slug, MembershipRole(role)) for slug, role in committees],
        actor_id=actor_id,
    )
    _send_invitation(user, actor_id)
    return user


def resend_invitation(user_id: int, *, actor_id: int | None = None) -> User:
    """Mail a new invitation to an agent who has not set a password yet."""
    user = db.session.get(User, user_id)
    if user is None:
        raise ServiceError("no such agent")
    if user.password_hash is not None:
        raise ServiceError(f"{user.email} has set a password already", field="email")
    if not user.active:
        raise ServiceError(f"{user.email} is deactivated", field="email")
    _send_invitation(user, actor_id)
    return user


def _send_invitation(user: User, actor_id: int | None) -> None:
    inviter = db.session.get(User, actor_id) if actor_id else None
    days = current_app.config["HELPDESK_INVITATION_DAYS"]
    text = (
        f"Hello {user.name},\n\n"
        f"{inviter.name if inviter else 'The organisers'} invited you to the conference "
        f"helpdesk. Choose your password here (the link works for {days} days, once):\n\n"
        f"{link_for(user, INVITATION)}\n\n"
        f"Your login is {user.email}.\n"
    )
    _queue(user, "Your invitation to the helpdesk", text)
    audit.record("agent.invited", actor_id=actor_id, subject_user_id=user.id)


def accept_invitation(token: str, name: str, password: str) -> User:
    """Set the invitee's name and password; the link stops working."""
    user = user_for_token(token, INVITATION)
    if name.strip():
        user.name = name.strip()[:200]
    agents.set_password(user.id, password, actor_id=user.id)
    audit.record("agent.invitation_accepted", actor_id=user.id, subject_user_id=user.id)
    return user


# -- password reset ------------------------------------------------------------------------


def request_password_reset(email: str) -> None:
    """Mail a reset link if an active agent with a password has this address.

    Says nothing either way: the caller shows the same page whatever happened.
    """
    try:
        key = addresses.normalize(email)
    except Exception:
        return
    user = db.session.scalar(sa.select(User).where(User.email == key))
    if user is None or not user.active or user.password_hash is None:
        log.info("password reset asked for an address without an active account")
        return
    minutes = current_app.config["HELPDESK_PASSWORD_RESET_MINUTES"]
    text = (
        f"Hello {user.name},\n\n"
        "somebody (hopefully you) asked to reset your helpdesk password. Choose a new one "
        f"here; the link works once, for {minutes} minutes:\n\n"
        f"{link_for(user, PASSWORD_RESET)}\n\n"
        "If it was not you, ignore this mail: your password stays as it is.\n"
    )
    _queue(user, "Reset your helpdesk password", text)
    audit.record("agent.password_reset_requested", subject_user_id=user.id)


def reset_password(token: str, password: str) -> User:
    """Set a new password through a reset link; the link and every session end."""
    user = user_for_token(token, PASSWORD_RESET)
    agents.set_password(user.id, password, actor_id=user.id)
    return user


def _queue(user: User, subject: str, text: str) -> None:
    from helpdesk.outbound.transactional import queue_message

    queue_message(
        OutboundKind.NOTIFICATION,
        from_addr=current_app.config["HELPDESK_MAIL_FROM"],
        to=[user.email],
        subject=subject,
        text=text,
        headers={"Auto-Submitted": "auto-generated"},
        message_id=make_message_id(),
    )
