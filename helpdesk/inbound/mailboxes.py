"""Mailbox service: configuration (secrets encrypted), watermarks and health."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from helpdesk import audit
from helpdesk.crypto import decrypt, encrypt
from helpdesk.database import utcnow
from helpdesk.errors import NotFound, ServiceError
from helpdesk.extensions import db
from helpdesk.models import Mailbox, MailboxFolder

TLS_MODES = ("implicit", "starttls", "none")
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass
class OAuth2Secrets:
    """What a Google Workspace mailbox logs in with."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_url: str = GOOGLE_TOKEN_URL


def check_after_import(value: str) -> str:
    """Validate an after-import action: leave, flag[:KEYWORD] or move:FOLDER."""
    from helpdesk.inbound.mailbox import parse_after_import

    try:
        parse_after_import(value.strip())
    except ValueError as error:
        raise ServiceError(str(error), field="after_import") from None
    return value.strip()


def add_mailbox(
    name: str,
    *,
    host: str,
    port: int,
    tls: str,
    username: str,
    password: str | None = None,
    oauth2: OAuth2Secrets | None = None,
    folders: list[str] | tuple[str, ...] = ("INBOX",),
    after_import: str = "leave",
    actor_id: int | None = None,
) -> Mailbox:
    """Configure a mailbox to fetch from; exactly one of password and oauth2 is required."""
    name = name.strip().lower()
    if not _NAME.match(name):
        raise ServiceError(f"{name!r} is not a valid mailbox name", field="name")
    if db.session.scalar(sa.select(Mailbox.id).where(Mailbox.name == name)) is not None:
        raise ServiceError(f"a mailbox {name!r} exists already", field="name")
    if tls not in TLS_MODES:
        raise ServiceError(f"tls must be one of {', '.join(TLS_MODES)}", field="tls")
    if not 0 < port < 65536:
        raise ServiceError("port must be between 1 and 65535", field="port")
    if (password is None) == (oauth2 is None):
        raise ServiceError("give either a password or OAuth2 credentials", field="password")
    if password is not None and not password:
        raise ServiceError("the password is empty", field="password")
    folders = [f.strip() for f in folders if f.strip()] or ["INBOX"]
    mailbox = Mailbox(
        name=name,
        host=host.strip(),
        port=port,
        tls=tls,
        username=username.strip(),
        folders=folders,
        after_import=check_after_import(after_import),
    )
    if password is not None:
        mailbox.password_encrypted = encrypt(password)
    if oauth2 is not None:
        if not (oauth2.client_id and oauth2.client_secret and oauth2.refresh_token):
            raise ServiceError("OAuth2 needs a client id, client secret and refresh token")
        mailbox.oauth2_client_id = oauth2.client_id
        mailbox.oauth2_client_secret_encrypted = encrypt(oauth2.client_secret)
        mailbox.oauth2_refresh_token_encrypted = encrypt(oauth2.refresh_token)
        mailbox.oauth2_token_url = oauth2.token_url
    db.session.add(mailbox)
    db.session.flush()
    audit.record("mailbox.created", actor_id=actor_id, mailbox=name, host=host, folders=folders)
    return mailbox


def get_mailbox(name: str) -> Mailbox:
    """The mailbox called ``name``; NotFound otherwise."""
    mailbox = db.session.scalar(sa.select(Mailbox).where(Mailbox.name == name.strip().lower()))
    if mailbox is None:
        raise NotFound(f"no mailbox {name!r}", field="name")
    return mailbox


def connection_config(mailbox: Mailbox):
    """The IMAP layer's configuration for a mailbox, secrets decrypted."""
    from helpdesk.inbound.mailbox import MailboxConfig
    from helpdesk.inbound.oauth2 import OAuth2Config

    oauth2 = None
    if mailbox.oauth2_client_id:
        oauth2 = OAuth2Config(
            client_id=mailbox.oauth2_client_id,
            client_secret=decrypt(mailbox.oauth2_client_secret_encrypted or ""),
            refresh_token=decrypt(mailbox.oauth2_refresh_token_encrypted or ""),
            token_url=mailbox.oauth2_token_url or GOOGLE_TOKEN_URL,
        )
    return MailboxConfig(
        name=mailbox.name,
        host=mailbox.host,
        port=mailbox.port,
        tls=mailbox.tls,
        username=mailbox.username,
        password=decrypt(mailbox.password_encrypted) if mailbox.password_encrypted else None,
        oauth2=oauth2,
        folders=list(mailbox.folders),
        after_import=mailbox.after_import,
    )


class DatabaseCheckpoint:
    """Per-folder (UIDVALIDITY, last UID) watermarks kept in the database."""

    def get(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        """The stored watermark, or None before the first fetch."""
        row = db.session.execute(
            sa.select(MailboxFolder.uidvalidity, MailboxFolder.last_uid)
            .join(Mailbox)
            .where(Mailbox.name == mailbox, MailboxFolder.folder == folder)
        ).first()
        db.session.commit()  # end the read transaction: the fetcher may idle for minutes
        return (int(row[0]), int(row[1])) if row else None

    def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Move the watermark forward (a new UIDVALIDITY replaces the old one)."""
        box = get_mailbox(mailbox)
        row = db.session.scalar(
            sa.select(MailboxFolder).where(
                MailboxFolder.mailbox_id == box.id, MailboxFolder.folder == folder
            )
        )
        if row is None:
            db.session.add(
                MailboxFolder(
                    mailbox_id=box.id, folder=folder, uidvalidity=uidvalidity, last_uid=uid
                )
            )
        elif row.uidvalidity != uidvalidity:
            row.uidvalidity, row.last_uid = uidvalidity, uid
        elif uid > row.last_uid:
            row.last_uid = uid
        db.session.commit()


def record_health(
    mailbox: str,
    *,
    ok: bool,
    error: str | None = None,
    backlog: int | None = None,
    at: datetime | None = None,
) -> None:
    """Write a mailbox's health after a fetch attempt."""
    box = db.session.scalar(sa.select(Mailbox).where(Mailbox.name == mailbox))
    if box is None:
        return
    now = at or utcnow()
    if ok:
        box.last_success_at = now
        box.consecutive_failures = 0
    else:
        box.last_error_at = now
        box.last_error = (error or "unknown error")[:5000]
        box.consecutive_failures += 1
    if backlog is not None:
        box.backlog = backlog
    db.session.commit()
