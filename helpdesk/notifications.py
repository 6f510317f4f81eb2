"""Telling committees about their tickets: Discord posts and e-mail to members who opted in.

New tickets and customer replies are announced to the ticket's committee's Discord channel
(if it set a webhook) and mailed to its members who asked for e-mail (Membership.notify_email)
and may read the ticket (helpdesk.access: recused members hear nothing). An @mention in a
note is mailed to the mentioned agent if they opted in for that committee.

What is said follows one rule: for a private committee only "new ticket in <committee>"
(or "new reply", "you were mentioned") and the link, never the subject, the sender or any
text of the ticket. Discord channels and mailboxes are outside the helpdesk's access
checks, so a private committee's message must be harmless wherever it ends up.

Everything is a job queued in the transaction that made the change, so nothing is said
about a ticket that was rolled back; the jobs read the ticket again when they run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from helpdesk import access, crypto
from helpdesk.database import transaction_cache, utcnow
from helpdesk.extensions import db
from helpdesk.integrations import discord
from helpdesk.jobs import enqueue, job
from helpdesk.models import (
    Committee,
    Membership,
    Message,
    Notification,
    OutboundKind,
    OutboundMessage,
    Ticket,
    User,
)
from helpdesk.models.committees import Visibility

log = logging.getLogger(__name__)

NEW_TICKET = "new_ticket"
CUSTOMER_REPLY = "customer_reply"
EVENTS = (NEW_TICKET, CUSTOMER_REPLY)
_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#@:<])")


@dataclass(frozen=True)
class Announcement:
    """What is said about one event: what happened, the subject (never for a private
    committee) and the link."""

    lead: str
    subject: str | None
    link: str

    @property
    def title(self) -> str:
        """One line: what happened and the subject."""
        return f"{self.lead}: {self.subject}" if self.subject else self.lead

    @property
    def text(self) -> str:
        """Title and link on two lines (Discord message, mail body)."""
        return f"{self.title}\n{self.link}"


def ticket_link(number: int) -> str:
    """The ticket page's public URL."""
    return f"{current_app.config['HELPDESK_BASE_URL']}/tickets/{number}"


def announcement(ticket: Ticket, committee: Committee, event: str) -> Announcement:
    """The words for ``event`` on ``ticket``; a private committee's say nothing of it."""
    link = ticket_link(ticket.number)
    if committee.visibility == Visibility.PRIVATE:
        what = "New ticket" if event == NEW_TICKET else "New reply"
        return Announcement(f"{what} in {committee.name}", None, link)
    what = "New ticket" if event == NEW_TICKET else "Customer reply on"
    return Announcement(f"{what} #{ticket.number} in {committee.name}", ticket.subject, link)


def _discord_text(ticket: Ticket, committee: Committee, event: str) -> str:
    said = announcement(ticket, committee, event)
    # Subjects are the customer's words: no Markdown, links or mentions from them.
    subject = _MARKDOWN.sub(r"\\\1", said.subject) if said.subject else None
    return f"{Announcement(said.lead, subject, said.link).title}\n<{said.link}>"


# -- settings ------------------------------------------------------------------------------


def set_discord_webhook(committee_id: int, url: str | None) -> None:
    """Set (or with an empty ``url`` remove) the committee's Discord webhook, encrypted."""
    committee = db.session.get(Committee, committee_id)
    if committee is None:
        raise LookupError("no such committee")
    if not url or not url.strip():
        committee.discord_webhook_encrypted = None
        return
    discord.parse_webhook_url(url)
    committee.discord_webhook_encrypted = crypto.encrypt(url.strip())


def discord_webhook(committee: Committee) -> discord.Webhook | None:
    """The committee's webhook, decrypted, if it has one."""
    if not committee.discord_webhook_encrypted:
        return None
    return discord.parse_webhook_url(crypto.decrypt(committee.discord_webhook_encrypted))


def set_email_opt_in(user_id: int, committee_id: int, wanted: bool) -> None:
    """Turn the member's e-mail notifications of one committee on or off."""
    membership = db.session.get(Membership, {"user_id": user_id, "committee_id": committee_id})
    if membership is None:
        raise LookupError("not a member")
    membership.notify_email = wanted


# -- the hooks: called in the transaction of the change ---------------------------------


def _listeners(committee_id: int) -> tuple[bool, bool]:
    """(has a Discord webhook, has members who want mail), in one query per committee and
    transaction (a fetched batch opens many tickets in the same queues)."""
    known = transaction_cache(db.session(), "helpdesk.notification_listeners")
    if committee_id not in known:
        known[committee_id] = _read_listeners(committee_id)
    return known[committee_id]


def _read_listeners(committee_id: int) -> tuple[bool, bool]:
    opted_in = (
        sa.select(Membership.user_id)
        .where(Membership.committee_id == committee_id, Membership.notify_email.is_(True))
        .exists()
    )
    # Reads committees and memberships only: what the caller has pending can wait for the
    # next flush instead of forcing one here.
    with db.session.no_autoflush:
        row = db.session.execute(
            sa.select(Committee.discord_webhook_encrypted.is_not(None), opted_in).where(
                Committee.id == committee_id
            )
        ).first()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def ticket_opened(ticket_id: int, committee_id: int) -> None:
    """A ticket was opened: announce it once the transaction commits."""
    _announce(ticket_id, committee_id, NEW_TICKET, None)


def customer_replied(ticket: Ticket, message_id: int) -> None:
    """The contact wrote again on a ticket: announce it once the transaction commits."""
    _announce(ticket.id, ticket.committee_id, CUSTOMER_REPLY, message_id)


def _announce(ticket_id: int, committee_id: int, event: str, message_id: int | None) -> None:
    webhook, mail = _listeners(committee_id)
    if webhook:
        enqueue(post_to_discord, ticket_id, event)
    if mail:
        enqueue(mail_members, ticket_id, event, message_id)


def mentioned(note: Message) -> None:
    """A note @mentioned agents: mail them once the transaction commits, if they opted in."""
    enqueue(mail_mentions, note.id)


# -- the jobs ----------------------------------------------------------------------------


@job("default", timeout=120, retries=3, retry_intervals=(30, 120, 600))
def post_to_discord(ticket_id: int, event: str) -> None:
    """Post a new ticket or customer reply to the ticket's committee's Discord channel."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or event not in EVENTS:
        return
    committee = ticket.committee
    webhook = discord_webhook(committee)
    if webhook is None:
        return
    discord.post(webhook, _discord_text(ticket, committee, event))


@job("default", timeout=120, retries=3)
def mail_members(ticket_id: int, event: str, message_id: int | None) -> None:
    """Mail a new ticket or customer reply to the committee's opted-in members who may read
    it. Running twice mails nobody twice."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or event not in EVENTS:
        return
    committee = ticket.committee
    said = announcement(ticket, committee, event)
    opted_in = sa.select(Membership.user_id).where(
        Membership.committee_id == committee.id, Membership.notify_email.is_(True)
    )
    readers = db.session.scalars(
        access.committee_members_who_can_read(ticket).where(User.id.in_(opted_in))
    )
    ref = f"{event.replace('_', '-')}.{message_id or ticket.id}"
    for user in readers:
        _queue_mail(user, committee, said, ref)


@job("default", timeout=120, retries=3)
def mail_mentions(note_id: int) -> None:
    """Mail the agents a note @mentioned, those who opted in and may still read the ticket;
    marks their notifications delivered. Running twice mails nobody twice."""
    pending = db.session.scalars(
        sa.select(Notification).where(
            Notification.message_id == note_id, Notification.delivered_at.is_(None)
        )
    )
    for notification in pending:
        _mail_mention(notification)


def _mail_mention(notification: Notification) -> None:
    user = db.session.get(User, notification.user_id)
    visible = db.session.scalar(
        access.visible_notifications(user).where(Notification.id == notification.id)
    )
    if visible is None:
        return
    ticket = notification.ticket
    committee = ticket.committee
    membership = db.session.get(Membership, {"user_id": user.id, "committee_id": committee.id})
    if membership is None or not membership.notify_email:
        return
    link = ticket_link(ticket.number)
    if committee.visibility == Visibility.PRIVATE:
        said = Announcement(f"You were mentioned on a ticket in {committee.name}", None, link)
    else:
        actor = notification.actor.name if notification.actor else "Somebody"
        said = Announcement(
            f"{actor} mentioned you on #{ticket.number} in {committee.name}", ticket.subject, link
        )
    _queue_mail(user, committee, said, f"mention.{notification.id}")
    notification.delivered_at = utcnow()


def _queue_mail(user: User, committee: Committee, said: Announcement, ref: str) -> None:
    from helpdesk.outbound.transactional import queue_message

    domain = urlsplit(current_app.config["HELPDESK_BASE_URL"]).hostname or "localhost"
    message_id = f"notify.{ref}.{user.id}@{domain}"
    exists = db.session.scalar(
        sa.select(OutboundMessage.id).where(OutboundMessage.message_id == message_id)
    )
    if exists is not None:
        return
    base = current_app.config["HELPDESK_BASE_URL"]
    text = (
        f"{said.text}\n\n"
        f"-- \nYou receive this because you asked for e-mail notifications of "
        f"{committee.name}. Change that at {base}/account\n"
    )
    queue_message(
        OutboundKind.NOTIFICATION,
        from_addr=current_app.config["HELPDESK_MAIL_FROM"],
        to=[user.email],
        subject=said.title[:900],
        text=text,
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
        # No ticket_id: an answer to this mail must not thread into the ticket.
        message_id=message_id,
    )
