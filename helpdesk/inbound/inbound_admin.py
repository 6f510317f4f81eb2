"""Mailboxes and quarantine for the admin pages: health, test login, retry and delete.

Every action is audited. The raw mail of a quarantine entry stays in the content-addressed
store when the entry is deleted (other receipts may share it).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from helpdesk import audit
from helpdesk.errors import NotFound
from helpdesk.extensions import db
from helpdesk.models import Mailbox, QuarantinedMail
from helpdesk.storage import raw_mail_store

MAX_HEADER_BYTES = 64 * 1024


def mailboxes() -> list[Mailbox]:
    """Every mailbox, by name."""
    return list(db.session.scalars(sa.select(Mailbox).order_by(Mailbox.name)))


def _mailbox(mailbox_id: int) -> Mailbox:
    box = db.session.get(Mailbox, mailbox_id)
    if box is None:
        raise NotFound("no such mailbox")
    return box


def set_mailbox_enabled(mailbox_id: int, enabled: bool, *, actor_id: int | None = None) -> None:
    """Start or stop fetching from a mailbox."""
    box = _mailbox(mailbox_id)
    if box.enabled != enabled:
        box.enabled = enabled
        audit.record(
            "mailbox.enabled" if enabled else "mailbox.disabled",
            actor_id=actor_id,
            mailbox=box.name,
        )


@dataclass(frozen=True)
class LoginTest:
    """The answer of a "test login": whether it worked, and what was seen or went wrong."""

    ok: bool
    summary: str
    problems: tuple[str, ...] = ()


def check_login(mailbox_id: int, *, actor_id: int | None = None) -> LoginTest:
    """Log in to the mailbox, list its folders and check the configuration (writes only the
    audit event)."""
    from helpdesk.inbound.mailbox_check import check_mailbox
    from helpdesk.inbound.mailboxes import connection_config

    box = _mailbox(mailbox_id)
    try:
        check = check_mailbox(connection_config(box))
    except Exception as error:  # whatever failed (DNS, TLS, login, token) is the answer
        result = LoginTest(False, f"login failed: {error}")
    else:
        push = "IDLE (push)" if check.idle else "no IDLE (polling)"
        result = LoginTest(
            check.ok,
            f"login ok; {push}; folders: {', '.join(check.folders)}",
            tuple(check.problems),
        )
    audit.record("mailbox.tested", actor_id=actor_id, mailbox=box.name, ok=result.ok)
    return result


# -- quarantine ------------------------------------------------------------------------------


def quarantine_entries(*, resolved: bool = False, limit: int = 200) -> list[QuarantinedMail]:
    """Quarantined mail, newest first; unresolved only unless ``resolved``."""
    stmt = sa.select(QuarantinedMail).order_by(QuarantinedMail.id.desc()).limit(limit)
    if not resolved:
        stmt = stmt.where(QuarantinedMail.resolved_at.is_(None))
    return list(db.session.scalars(stmt))


def quarantine_entry(entry_id: int) -> QuarantinedMail:
    """One entry; NotFound otherwise."""
    entry = db.session.get(QuarantinedMail, entry_id)
    if entry is None:
        raise NotFound("no such quarantine entry")
    return entry


def raw_mail(entry: QuarantinedMail) -> bytes:
    """The entry's raw mail as received."""
    return raw_mail_store().get(entry.raw_mail.sha256)


def header_text(entry: QuarantinedMail) -> str:
    """The mail's header block, as text (undecodable bytes shown escaped)."""
    raw = raw_mail(entry)
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    return raw[: min(end, MAX_HEADER_BYTES)].decode("utf-8", "backslashreplace")


def retry(entry_id: int, *, actor_id: int | None = None):
    """Run the entry's mail through the pipeline again (commits, as ingestion does)."""
    from helpdesk.inbound.ingest import retry_quarantined

    quarantine_entry(entry_id)
    result = retry_quarantined(entry_id)
    audit.record(
        "quarantine.retried",
        actor_id=actor_id,
        entry_id=entry_id,
        outcome=result.outcome,
        tickets=result.ticket_numbers,
    )
    return result


def delete(entry_id: int, *, actor_id: int | None = None) -> None:
    """Delete a quarantine entry (its raw mail stays in the store)."""
    entry = quarantine_entry(entry_id)
    audit.record(
        "quarantine.deleted",
        actor_id=actor_id,
        entry_id=entry_id,
        source=entry.source,
        stage=entry.stage,
        sha256=entry.raw_mail.sha256,
    )
    db.session.delete(entry)
    db.session.flush()
