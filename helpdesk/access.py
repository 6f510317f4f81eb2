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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import (
    Attachment,
    AuditEvent,
    Committee,
    MailingList,
    Membership,
    MembershipRole,
    Message,
    Notification,
    Ticket,
    TicketRecusal,
    User,
)
from helpdesk.models.committees import Visibility


def is_agent(user: Any) -> bool:
    """An authenticated, active agent (anonymous visitors and deactivated users are not)."""
    return isinstance(user, User) and user.is_authenticated and user.active


def _member_committee_ids(user: User) -> sa.Select:
    return sa.select(Membership.committee_id).where(Membership.user_id == user.id)


def readable_committee_ids(user: Any) -> sa.Select:
    """Ids of committees whose tickets ``user`` may read (before recusals)."""
    if not is_agent(user):
        return sa.select(Committee.id).where(sa.false())
    return sa.select(Committee.id).where(
        sa.or_(
            Committee.visibility == Visibility.OPEN,
            Committee.id.in_(_member_committee_ids(user)),
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
                Committee.id.in_(_member_committee_ids(user)),
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


def is_member(user: Any, committee_id: int) -> bool:
    """Whether ``user`` is a member (any role) of the committee."""
    if not is_agent(user):
        return False
    return (
        db.session.get(Membership, {"user_id": user.id, "committee_id": committee_id}) is not None
    )


# -- administration ----------------------------------------------------------------------


def is_site_admin(user: Any) -> bool:
    """An active agent with the site admin flag: manages every committee, user, rule,
    mailbox and the quarantine (but reads private tickets only where a member)."""
    return is_agent(user) and bool(user.is_admin)


def may_administer(user: Any) -> bool:
    """Whether ``user`` sees the admin pages at all: site admins and committee leads."""
    if not is_agent(user):
        return False
    if user.is_admin:
        return True
    return (
        db.session.scalar(
            sa.select(Membership.committee_id)
            .where(Membership.user_id == user.id, Membership.role == MembershipRole.LEAD)
            .limit(1)
        )
        is not None
    )


def managed_committee(user: Any, slug: str) -> Committee | None:
    """The committee called ``slug`` if ``user`` manages it (its members and canned
    replies), else None: to anyone else it answers "not found", private or not."""
    return db.session.scalar(manageable_committees(user).where(Committee.slug == slug))


# -- mailing lists ----------------------------------------------------------------------------


def _list_visibility(user: Any) -> sa.ColumnElement[bool]:
    """Lists whose organiser pages ``user`` may open: those of the committees the user
    belongs to (any role) and, for site admins, those of every committee that is not
    private. A private committee's lists exist only for its members."""
    if not is_agent(user):
        return sa.false()
    member_of = MailingList.committee_id.in_(_member_committee_ids(user))
    if not user.is_admin:
        return member_of
    not_private = sa.select(Committee.id).where(Committee.visibility != Visibility.PRIVATE)
    return sa.or_(member_of, MailingList.committee_id.in_(not_private))


def visible_lists(user: Any) -> sa.Select:
    """Mailing lists ``user`` may see and organise, ordered by name."""
    return sa.select(MailingList).where(_list_visibility(user)).order_by(MailingList.name)


def visible_list(user: Any, slug: str) -> MailingList | None:
    """The list called ``slug`` if ``user`` may organise it, else None (as if missing)."""
    return db.session.scalar(
        sa.select(MailingList).where(MailingList.slug == slug, _list_visibility(user))
    )


def list_owner_committees(user: Any) -> sa.Select:
    """Committees ``user`` may create lists for (the same rule as seeing their lists)."""
    if not is_agent(user):
        return sa.select(Committee).where(sa.false())
    member_of = Committee.id.in_(_member_committee_ids(user))
    scope = (
        sa.or_(member_of, Committee.visibility != Visibility.PRIVATE)
        if user.is_admin
        else member_of
    )
    return sa.select(Committee).where(scope).order_by(Committee.name)


def can_manage_suppressions(user: Any) -> bool:
    """Whether ``user`` may read and edit the global suppression list: site admins and
    committee leads (it is site-wide and holds addresses from every committee's mail)."""
    return may_administer(user)


def can_manage_api_keys(user: Any) -> bool:
    """Whether ``user`` may issue, list and revoke API keys (site admins only)."""
    return is_agent(user) and bool(user.is_admin)


def campaign_committee_ids(user: Any) -> sa.Select:
    """Committees whose newsletters ``user`` may see and run: the committees they belong
    to (member or lead), and for site admins every committee that is not private."""
    if not is_agent(user):
        return sa.select(Committee.id).where(sa.false())
    if user.is_admin:
        return sa.select(Committee.id).where(
            sa.or_(
                Committee.visibility != Visibility.PRIVATE,
                Committee.id.in_(_member_committee_ids(user)),
            )
        )
    return _member_committee_ids(user)


def visible_templates(user: Any) -> sa.Select:
    """Newsletter templates ``user`` may use and preview: shared ones (no committee) and
    those of the committees whose campaigns the user runs; ordered by name."""
    from helpdesk.models.campaigns import MailTemplate

    if not is_agent(user):
        return sa.select(MailTemplate).where(sa.false())
    return (
        sa.select(MailTemplate)
        .where(
            sa.or_(
                MailTemplate.committee_id.is_(None),
                MailTemplate.committee_id.in_(campaign_committee_ids(user)),
            )
        )
        .order_by(MailTemplate.name)
    )


def can_read_template(user: Any, template: Any) -> bool:
    """Whether ``user`` may open ``template`` (else it answers 404, as if missing)."""
    if not is_agent(user):
        return False
    if template.committee_id is None:
        return True
    return can_run_campaigns_of(user, template.committee_id)


def can_write_template(user: Any, template: Any) -> bool:
    """Shared templates are edited by site admins, a committee's by its organisers."""
    if template.committee_id is None:
        return is_site_admin(user)
    return can_run_campaigns_of(user, template.committee_id)


def visible_campaigns(user: Any) -> sa.Select:
    """Campaigns ``user`` may see and run, newest first."""
    from helpdesk.models.campaigns import Campaign

    return (
        sa.select(Campaign)
        .where(Campaign.committee_id.in_(campaign_committee_ids(user)))
        .order_by(Campaign.id.desc())
    )


def can_run_campaigns_of(user: Any, committee_id: int) -> bool:
    """Whether ``user`` may create, see and run the committee's campaigns: its members, and
    site admins unless the committee is private."""
    if not is_agent(user):
        return False
    if is_member(user, committee_id):
        return True
    if not user.is_admin:
        return False
    visibility = db.session.scalar(
        sa.select(Committee.visibility).where(Committee.id == committee_id)
    )
    return visibility is not None and visibility != Visibility.PRIVATE
