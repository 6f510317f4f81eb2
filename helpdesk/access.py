"""Who may see and do what. The only module that decides visibility.

The rules:

* ``open`` committees are readable by every active agent;
* ``members`` committees are listed for every agent, but only members read their tickets;
* ``private`` committees exist only for their members: for anyone else they are not
  listed, counted, searchable or reachable by URL, API, attachment link or notification.
  A site admin who is not a member sees none of their tickets; admins only manage
  memberships (and so know the committee's name, in the admin pages);
* a ticket can recuse members: a recused member does not see the ticket at all, whatever
  the committee's visibility and the member's role.

Every list, count, search, page, download and API call starts from one of the
query-level scopes below (:func:`visible_tickets` above all), so a view cannot forget a
rule by forgetting a ``where``. Anything an agent may not read answers "not found",
exactly like something that does not exist.

This module is where callers ask. It holds the ticket, committee and audit rules and
re-exports the rest: who a user is (:mod:`helpdesk.access_roles`) and who may organise
lists and campaigns (:mod:`helpdesk.access_outbound`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from helpdesk.access_outbound import (
    campaign_committee_ids,
    can_manage_api_keys,
    can_manage_suppressions,
    can_read_template,
    can_run_campaigns_of,
    can_write_template,
    list_owner_committees,
    visible_campaigns,
    visible_list,
    visible_lists,
    visible_templates,
)
from helpdesk.access_roles import (
    is_agent,
    is_member,
    is_site_admin,
    may_administer,
    member_committee_ids,
)
from helpdesk.extensions import db
from helpdesk.models import (
    Attachment,
    AuditEvent,
    Committee,
    Membership,
    MembershipRole,
    Message,
    Notification,
    Ticket,
    TicketRecusal,
    User,
)
from helpdesk.models.committees import Visibility

# Every rule callers may ask for, those defined in access_roles and access_outbound included.
__all__ = [
    "MANAGEMENT_ACTION_PREFIXES",
    "campaign_committee_ids",
    "can_manage_api_keys",
    "can_manage_suppressions",
    "can_read_template",
    "can_read_ticket",
    "can_run_campaigns_of",
    "can_work_ticket",
    "can_write_template",
    "committee_members_who_can_read",
    "is_agent",
    "is_member",
    "is_site_admin",
    "list_owner_committees",
    "manageable_committees",
    "managed_committee",
    "may_administer",
    "readable_committee_ids",
    "readable_committees",
    "ticket_readers",
    "ticket_visibility",
    "visible_attachment",
    "visible_audit_events",
    "visible_campaigns",
    "visible_committees",
    "visible_list",
    "visible_lists",
    "visible_messages",
    "visible_notifications",
    "visible_templates",
    "visible_ticket",
    "visible_ticket_counts",
    "visible_tickets",
]


def readable_committee_ids(user: Any) -> sa.Select:
    """Ids of committees whose tickets ``user`` may read (before recusals)."""
    if not is_agent(user):
        return sa.select(Committee.id).where(sa.false())
    return sa.select(Committee.id).where(
        sa.or_(
            Committee.visibility == Visibility.OPEN,
            Committee.id.in_(member_committee_ids(user)),
        )
    )


def visible_committees(user: Any) -> sa.Select:
    """Committees ``user`` may know exist: open and members-only ones, and private ones
    the user belongs to. Ordered by name."""
    if not is_agent(user):
        return sa.select(Committee).where(sa.false())
    return (
        sa.select(Committee)
        .where(
            sa.or_(
                Committee.visibility != Visibility.PRIVATE,
                Committee.id.in_(member_committee_ids(user)),
            )
        )
        .order_by(Committee.name)
    )


def readable_committees(user: Any) -> sa.Select:
    """Committees whose queues ``user`` may open. Ordered by name."""
    return (
        sa.select(Committee)
        .where(Committee.id.in_(readable_committee_ids(user)))
        .order_by(Committee.name)
    )


def manageable_committees(user: Any) -> sa.Select:
    """Committees whose settings and members ``user`` may change: all for site admins,
    the committees they lead for leads. Ordered by name."""
    if not is_agent(user):
        return sa.select(Committee).where(sa.false())
    if user.is_admin:
        return sa.select(Committee).order_by(Committee.name)
    led = sa.select(Membership.committee_id).where(
        Membership.user_id == user.id, Membership.role == MembershipRole.LEAD
    )
    return sa.select(Committee).where(Committee.id.in_(led)).order_by(Committee.name)


def ticket_visibility(user: Any) -> sa.ColumnElement[bool]:
    """The WHERE clause, over ``Ticket``, of the tickets ``user`` may read."""
    if not is_agent(user):
        return sa.false()
    recused = sa.exists().where(
        TicketRecusal.ticket_id == Ticket.id, TicketRecusal.user_id == user.id
    )
    return sa.and_(Ticket.committee_id.in_(readable_committee_ids(user)), ~recused)


def visible_tickets(user: Any) -> sa.Select:
    """Tickets ``user`` may read: the scope every ticket list, count, search and page uses."""
    return sa.select(Ticket).where(ticket_visibility(user))


def visible_ticket_counts(user: Any, statuses: Iterable[str]) -> sa.Select:
    """Rows (committee_id, status, n): how many tickets in ``statuses`` ``user`` may read.

    The same numbers as counting :func:`visible_tickets`, computed as the readable
    committees' counts (an index-only scan of tickets by committee and status) minus the
    tickets the user is recused from, instead of an anti-join for every ticket.
    """
    if not is_agent(user):
        return sa.select(Ticket.committee_id, Ticket.status, sa.literal(0)).where(sa.false())
    wanted = sa.and_(
        Ticket.committee_id.in_(readable_committee_ids(user)), Ticket.status.in_(list(statuses))
    )
    columns = (Ticket.committee_id, Ticket.status)
    totals = (
        sa.select(*columns, sa.func.count().label("n")).where(wanted).group_by(*columns)
    ).subquery()
    recused = (
        sa.select(*columns, sa.func.count().label("n"))
        .join(
            TicketRecusal,
            sa.and_(TicketRecusal.ticket_id == Ticket.id, TicketRecusal.user_id == user.id),
        )
        .where(wanted)
        .group_by(*columns)
    ).subquery()
    return sa.select(
        totals.c.committee_id,
        totals.c.status,
        (totals.c.n - sa.func.coalesce(recused.c.n, 0)).label("n"),
    ).outerjoin(
        recused,
        sa.and_(
            recused.c.committee_id == totals.c.committee_id, recused.c.status == totals.c.status
        ),
    )


def visible_ticket(user: Any, number: int) -> Ticket | None:
    """The ticket with public ``number`` if ``user`` may read it, else None."""
    return db.session.scalar(visible_tickets(user).where(Ticket.number == number))


def can_read_ticket(user: Any, ticket: Ticket) -> bool:
    """Whether ``user`` may read ``ticket``."""
    return (
        db.session.scalar(
            sa.select(sa.literal(True)).where(Ticket.id == ticket.id, ticket_visibility(user))
        )
        is True
    )


def can_work_ticket(user: Any, ticket: Ticket) -> bool:
    """Whether ``user`` may reply to, note, assign and change ``ticket``.

    Whoever may read a ticket may work on it: an open committee's queue is a shared
    queue that any agent can help with.
    """
    return can_read_ticket(user, ticket)


def visible_messages(user: Any) -> sa.Select:
    """Messages (mail and notes) on tickets ``user`` may read."""
    return (
        sa.select(Message)
        .join(Ticket, Message.ticket_id == Ticket.id)
        .where(ticket_visibility(user))
    )


def visible_attachment(user: Any, attachment_id: int) -> Attachment | None:
    """The attachment if it belongs to a ticket ``user`` may read, else None."""
    stmt = (
        sa.select(Attachment)
        .join(Message, Attachment.message_id == Message.id)
        .join(Ticket, Message.ticket_id == Ticket.id)
        .where(Attachment.id == attachment_id, ticket_visibility(user))
    )
    return db.session.scalar(stmt)


def visible_notifications(user: Any) -> sa.Select:
    """The user's own notifications about tickets the user may still read, newest first."""
    if not is_agent(user):
        return sa.select(Notification).where(sa.false())
    return (
        sa.select(Notification)
        .join(Ticket, Notification.ticket_id == Ticket.id)
        .where(Notification.user_id == user.id, ticket_visibility(user))
        .order_by(Notification.id.desc())
    )


def ticket_readers(ticket: Ticket) -> sa.Select:
    """Active agents who may read ``ticket``: whom to notify, assign or @mention."""
    committee = ticket.committee
    stmt = sa.select(User).where(User.active.is_(True))
    if committee.visibility != Visibility.OPEN:
        members = sa.select(Membership.user_id).where(Membership.committee_id == committee.id)
        stmt = stmt.where(User.id.in_(members))
    recused = sa.select(TicketRecusal.user_id).where(TicketRecusal.ticket_id == ticket.id)
    return stmt.where(User.id.not_in(recused)).order_by(User.name)


def committee_members_who_can_read(ticket: Ticket) -> sa.Select:
    """The ticket's committee's active members who may read it (notification audience)."""
    members = sa.select(Membership.user_id).where(Membership.committee_id == ticket.committee_id)
    return ticket_readers(ticket).where(User.id.in_(members))


# Audit actions about a committee's setup rather than its tickets; those who manage the
# committee see them even where they may not read its tickets.
MANAGEMENT_ACTION_PREFIXES = ("committee.", "membership.")


def visible_audit_events(user: Any) -> sa.Select:
    """Audit events ``user`` may read, newest first.

    An event about a ticket is visible with the ticket; an event about a committee only
    (a deleted ticket's events among them) with the committee's tickets, or, for its
    membership and settings changes, to whoever manages it; site-wide events (agents,
    tokens) to site admins.
    """
    if not is_agent(user):
        return sa.select(AuditEvent).where(sa.false())
    managed = manageable_committees(user).with_only_columns(Committee.id).order_by(None)
    is_management = sa.or_(
        *(AuditEvent.action.startswith(prefix) for prefix in MANAGEMENT_ACTION_PREFIXES)
    )
    about_ticket = AuditEvent.ticket_id.in_(sa.select(Ticket.id).where(ticket_visibility(user)))
    about_committee = sa.and_(
        AuditEvent.ticket_id.is_(None),
        AuditEvent.committee_id.is_not(None),
        sa.or_(
            AuditEvent.committee_id.in_(readable_committee_ids(user)),
            sa.and_(is_management, AuditEvent.committee_id.in_(managed)),
        ),
    )
    site_wide = sa.and_(
        AuditEvent.ticket_id.is_(None),
        AuditEvent.committee_id.is_(None),
        sa.true() if user.is_admin else AuditEvent.actor_id == user.id,
    )
    return (
        sa.select(AuditEvent)
        .where(sa.or_(about_ticket, about_committee, site_wide))
        .order_by(AuditEvent.id.desc())
    )


# -- administration ----------------------------------------------------------------------


def managed_committee(user: Any, slug: str) -> Committee | None:
    """The committee called ``slug`` if ``user`` manages it (its members and canned
    replies), else None: to anyone else it answers "not found", private or not."""
    return db.session.scalar(manageable_committees(user).where(Committee.slug == slug))
