"""Agent accounts: creation, passwords, deactivation and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from helpdesk import addresses, audit
from helpdesk.committees import get_committee, set_membership
from helpdesk.database import utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import ApiToken, MembershipRole, User

MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "hd_"  # noqa: S105 - a marker, not a secret


@cache
def _dummy_hash() -> str:
    # Checked against when an unknown address logs in, so that a wrong e-mail takes as
    # long as a wrong password and does not reveal which accounts exist.
    return generate_password_hash(secrets.token_hex(16))


def get_agent(email: str) -> User:
    """The agent with ``email``; NotFound otherwise."""
    user = db.session.scalar(sa.select(User).where(User.email == addresses.normalize(email)))
    if user is None:
        raise NotFound(f"no agent {email!r}", field="email")
    return user


def create_agent(
    email: str,
    name: str,
    *,
    password: str | None = None,
    admin: bool = False,
    committees: list[tuple[str, MembershipRole]] | tuple = (),
    actor_id: int | None = None,
) -> User:
    """Create an agent; ``committees`` is a list of (slug, role) memberships."""
    email = addresses.normalize(addresses.require_valid(email))
    if not name.strip():
        raise ServiceError("an agent needs a name", field="name")
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise ServiceError(f"an agent {email} exists already", field="email")
    user = User(email=email, name=name.strip(), is_admin=admin)
    if password is not None:
        _check_password(password)
        user.password_hash = generate_password_hash(password)
    db.session.add(user)
    db.session.flush()
    audit.record("agent.created", actor_id=actor_id, subject_user_id=user.id, admin=admin)
    for slug, role in committees:
        set_membership(get_committee(slug).id, user.id, role, actor_id=actor_id)
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )


def set_password(user_id: int, password: str, *, actor_id: int | None = None) -> None:
    """Set a new password; every existing session of the agent ends."""
    _check_password(password)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such agent")
    user.password_hash = generate_password_hash(password)
    user.session_version += 1
    audit.record("agent.password_set", actor_id=actor_id, subject_user_id=user_id)


def set_active(user_id: int, active: bool, *, actor_id: int | None = None) -> None:
    """Activate or deactivate an agent; deactivation ends their sessions and tokens."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such agent")
    if user.active == active:
        return
    user.active = active
    user.session_version += 1
    audit.record(
        "agent.activated" if active else "agent.deactivated",
        actor_id=actor_id,
        subject_user_id=user_id,
    )


def authenticate(email: str, password: str) -> User | None:
    """The active agent with these credentials, or None (in constant-ish time)."""
    user = db.session.scalar(sa.select(User).where(User.email == addresses.normalize(email)))
    if user is None or user.password_hash is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def load_session_user(session_id: str) -> User | None:
    """The agent for a Flask-Login session id ``"<id>.<session_version>"``, if still valid."""
    user_id, _, version = session_id.partition(".")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits: a plain SHA-256 is a safe, indexable digest for them.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(
    user_id: int,
    *,
    name: str = "",
    scopes: list[str] | None = None,
    rate_limit: str | None = None,
    actor_id: int | None = None,
) -> str:
    """Create a bearer token for the agent; the token itself is returned once, never stored."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such agent")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        token_hash=_token_hash(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        name=name,
        scopes=sorted(set(scopes or [])),
        rate_limit=rate_limit or None,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "api_token.issued", actor_id=actor_id, subject_user_id=user_id, token_id=row.id, name=name
    )
    return token


@dataclass(frozen=True)
class ApiKey:
    """An active API key as a request sees it: whose it is and what it may do."""

    id: int
    user_id: int
    scopes: frozenset[str]
    rate_limit: str | None
    last_used_at: datetime | None


@cache
def _api_key_query() -> sa.Select:
    # Built once, on the tables rather than the mapped classes: on the API's hot path,
    # building the statement and the ORM's handling of its result cost more than running it.
    tokens, users = ApiToken.__table__, User.__table__
    return (
        sa.select(
            tokens.c.id,
            tokens.c.user_id,
            tokens.c.token_hash,
            tokens.c.scopes,
            tokens.c.rate_limit,
            tokens.c.last_used_at,
        )
        .select_from(tokens.join(users, users.c.id == tokens.c.user_id))
        .where(
            tokens.c.token_hash == sa.bindparam("digest"),
            tokens.c.revoked_at.is_(None),
            users.c.active.is_(True),
        )
    )


def api_key_for_token(token: str) -> ApiKey | None:
    """The key for a bearer token if neither it is revoked nor its agent inactive, else None.

    Read from the database on every call, so that a revocation takes effect at once; only
    the columns a request needs are loaded, not the token and agent objects.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _token_hash(token)
    row = db.session.execute(_api_key_query(), {"digest": digest}).first()
    # The digest lookup is exact; compare again in constant time out of habit.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    scopes = frozenset(row.scopes or ())
    return ApiKey(row.id, row.user_id, scopes, row.rate_limit, row.last_used_at)


def note_api_key_use(key: ApiKey) -> bool:
    """Set the key's last use to now, at most once a minute; True when that wrote a change.

    A busy integration should not write on every call.
    """
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at <= timedelta(minutes=1):
        return False
    db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.id == key.id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


def revoke_api_token(token_id: int, *, actor_id: int | None = None) -> None:
    """Revoke a token; it stops working at once."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            "api_token.revoked", actor_id=actor_id, subject_user_id=row.user_id, token_id=token_id
        )
