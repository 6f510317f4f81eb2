"""Who a user is, as the access rules ask it: an active agent, a committee member or
lead, a site admin.

Callers ask :mod:`helpdesk.access`, which re-exports these; they live apart so that the
ticket rules there and the outbound rules in :mod:`helpdesk.access_outbound` can share
them without importing each other.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import Membership, MembershipRole, User


def is_agent(user: Any) -> bool:
    """An authenticated, active agent (anonymous visitors and deactivated users are not)."""
    return isinstance(user, User) and user.is_authenticated and user.active


def member_committee_ids(user: User) -> sa.Select:
    """Ids of the committees ``user`` belongs to, in any role."""
    return sa.select(Membership.committee_id).where(Membership.user_id == user.id)


def is_member(user: Any, committee_id: int) -> bool:
    """Whether ``user`` is a member (any role) of the committee."""
    if not is_agent(user):
        return False
    return (
        db.session.get(Membership, {"user_id": user.id, "committee_id": committee_id}) is not None
    )


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
