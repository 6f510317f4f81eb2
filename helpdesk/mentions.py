"""@mentions in internal notes: whom a note names, and their notifications.

Only agents who may read the ticket can be mentioned (helpdesk.access.ticket_readers); a
name that matches nobody among them, or several, notifies nobody and is reported back.
A mention writes a Notification row; showing it (dashboard) and delivering it (e-mail,
Discord) is up to the notification side, always through helpdesk.access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from helpdesk import access, notifications, tickets
from helpdesk.database import utcnow
from helpdesk.extensions import db
from helpdesk.models import Message, Notification, NotificationKind, User

# "@ada", "@ada.lovelace", "@ada@conference.example"; not the "@" inside an address.
_MENTION = re.compile(r"(?<![\w@.+-])@(\w[\w.+-]*(?:@[\w-]+(?:\.[\w-]+)+)?)")


@dataclass
class NoteResult:
    """The note and whom it notified."""

    note: Message
    notified: list[User] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def mentioned_names(text: str) -> list[str]:
    """The names written after ``@`` in ``text``, lower-cased, in order, once each."""
    names: list[str] = []
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip(".-+").lower()
        if name and name not in names:
            names.append(name)
    return names


def _matches(user: User, name: str) -> bool:
    local = user.email.partition("@")[0]
    first = user.name.split()[0].lower() if user.name.split() else ""
    return name in (user.email, local, first, user.name.lower().replace(" ", "."))


def resolve(ticket_id: int, names: list[str]) -> tuple[dict[str, User], list[str]]:
    """Map each name to the one ticket reader it designates; the rest are unknown."""
    ticket = tickets.get_ticket(ticket_id)
    readers = list(db.session.scalars(access.ticket_readers(ticket)))
    found: dict[str, User] = {}
    unknown: list[str] = []
    for name in names:
        candidates = [u for u in readers if _matches(u, name)]
        if len(candidates) == 1:
            found[name] = candidates[0]
        else:
            unknown.append(name)
    return found, unknown


def add_note(ticket_id: int, author_id: int, text: str) -> NoteResult:
    """Add an internal note (never mailed) and notify the readers it mentions."""
    note = tickets.add_note(ticket_id, author_id, text)
    found, unknown = resolve(ticket_id, mentioned_names(text))
    result = NoteResult(note, unknown=unknown)
    for user in found.values():
        if user.id == author_id or user in result.notified:
            continue
        db.session.add(
            Notification(
                user_id=user.id,
                kind=NotificationKind.MENTION,
                ticket_id=ticket_id,
                message_id=note.id,
                actor_id=author_id,
            )
        )
        result.notified.append(user)
    db.session.flush()
    if result.notified:
        notifications.mentioned(note)
    return result


def unread(user: User, *, limit: int = 20) -> list[Notification]:
    """The agent's unread mentions on tickets they may still read, newest first."""
    stmt = access.visible_notifications(user).where(Notification.read_at.is_(None)).limit(limit)
    return list(db.session.scalars(stmt))


def mark_read(user_id: int, ticket_id: int) -> int:
    """Mark the agent's notifications about a ticket read (they opened it); returns how many."""
    rows = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user_id,
            Notification.ticket_id == ticket_id,
            Notification.read_at.is_(None),
        )
    )
    now = utcnow()
    count = 0
    for row in rows:
        row.read_at = now
        count += 1
    return count
