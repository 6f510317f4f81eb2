"""Agents (the committee volunteers who log in) and their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.database import JSONType, utcnow
from helpdesk.extensions import db

if TYPE_CHECKING:
    from helpdesk.models.committees import Membership


class User(db.Model):
    """An agent. Flask-Login's user protocol is implemented here."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased so that logins and invitations match whatever case is typed.
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Bumped on password change or deactivation: every existing session stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # -- Flask-Login ------------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        """Deactivated agents cannot log in and lose their sessions."""
        return self.active

    @property
    def is_authenticated(self) -> bool:
        """Always true for a loaded user (anonymous users are another class)."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Never anonymous."""
        return False

    def get_id(self) -> str:
        """Session identifier; carries the session version so old sessions expire."""
        return f"{self.id}.{self.session_version}"


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters of the token, shown so that an owner can tell tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # A `limits` rate string ("10/second;1000/hour") for this token; unset: the default.
    rate_limit: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
