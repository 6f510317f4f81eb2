"""Mail to the admins when a mailbox starts failing, and when it works again.

A mailbox whose login fails stops bringing in mail without anyone noticing: the audit
log records it, and every active admin gets a mail through the transactional path, from
HELPDESK_MAIL_FROM like the service's other mail.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from helpdesk.extensions import db
from helpdesk.inbound.threading import make_message_id
from helpdesk.models import OutboundKind, User
from helpdesk.outbound.transactional import queue_message

log = logging.getLogger(__name__)


def alert_admins(mailbox: str, *, failing: bool, error: str | None = None) -> int:
    """Queue one alert per active admin; returns how many were queued."""
    sender = current_app.config["HELPDESK_MAIL_FROM"]
    admins = db.session.scalars(
        sa.select(User.email).where(User.is_admin.is_(True), User.active.is_(True))
    ).all()
    if not admins:
        log.warning("no active admin: mailbox %s alert not mailed", mailbox)
        return 0
    base = current_app.config.get("HELPDESK_BASE_URL") or ""
    if failing:
        subject = f"Mailbox {mailbox} is failing"
        text = (
            f"The helpdesk cannot fetch mail from the mailbox {mailbox!r}.\n\n"
            f"Error: {error or 'unknown'}\n\n"
            "Mail sent to it waits on the server until this is fixed; nothing is lost.\n"
            f"Mailbox health: {base}/admin/mailboxes\n"
        )
    else:
        subject = f"Mailbox {mailbox} works again"
        text = f"The helpdesk fetches mail from the mailbox {mailbox!r} again.\n"
    for address in admins:
        queue_message(
            OutboundKind.NOTIFICATION,
            from_addr=sender,
            to=[address],
            subject=subject,
            text=text,
            headers={"Auto-Submitted": "auto-generated"},
            message_id=make_message_id(),
        )
    return len(admins)
