"""Who may organise mailing lists and run campaigns: lists, templates, campaigns, the
suppression list and API keys.

Callers ask :mod:`helpdesk.access`, which re-exports these rules. As for tickets,
anything a user may not see answers "not found", and a private committee's lists,
templates and campaigns exist only for its members.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from helpdesk.access_roles import (
    is_agent,
    is_member,
    is_site_admin,
    may_administer,
    member_committee_ids,
)
from helpdesk.extensions import db
from helpdesk.models import Committee, MailingList
from helpdesk.models.committees import Visibility

# -- mailing lists ----------------------------------------------------------------------------


def _list_visibility(user: Any) -> sa.ColumnElement[bool]:
    """Lists whose organiser pages ``user`` may open: those of the committees the user
    belongs to (any role) and, for site admins, those of every committee that is not
    private. A private committee's lists exist only for its members."""
    if not is_agent(user):
        return sa.false()
    member_of = MailingList.committee_id.in_(member_committee_ids(user))
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
    member_of = Committee.id.in_(member_committee_ids(user))
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
                Committee.id.in_(member_committee_ids(user)),
            )
        )
    return member_committee_ids(user)


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
